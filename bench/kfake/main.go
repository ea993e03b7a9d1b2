// Command kfake serves franz-go's in-memory Kafka broker (pkg/kfake) on one address,
// so `strait bench` can measure it and Strait side by side with the same client code
// (see docs/benchmarks.md). It is a module of its own so that Strait's own module does
// not depend on kfake.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9192", "address to serve the Kafka protocol on")
	partitions := flag.Int("partitions", 8, "default partitions of auto-created topics")
	flag.Parse()
	host, portText, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("--listen %q: %v", *listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		log.Fatalf("--listen %q: port: %v", *listen, err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, portText))
		}),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		log.Fatalf("kfake: %v", err)
	}
	defer c.Close()
	fmt.Println("kfake listening on", c.ListenAddrs())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
