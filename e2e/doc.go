// Package e2e runs Strait as users do: the built binary, real Kafka clients
// (franz-go, kcat), and later real Redis and real faults (SIGKILL).
//
// TestMain builds ./cmd/strait once per `go test` run. Tests start processes
// through the harness:
//
//	p := StartDev(t, Nodes(3))      // strait dev on free loopback ports, ready
//	cl := p.Client(t)               // franz-go client seeded with p.Addr()
//	p.Restart(t)                    // SIGTERM, then start again on the same data dir
//	p.Kill()                        // SIGKILL
//
// Every process's output goes to a buffer (Process.Log) and to a file; when a
// test fails, the log of each process it started is printed. Set
// STRAIT_E2E_LOG_DIR to keep the log files after the run, and STRAIT_BIN to
// test a prebuilt binary instead of building one.
//
// StartDev is built on startProcess, which runs any program (strait node,
// strait proxy, redis-server) with the same lifecycle: captured log,
// readiness polling, Stop/Kill/Restart, cleanup when the test ends.
package e2e
