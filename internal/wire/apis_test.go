package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-511: ApiVersions v3+ names the client software; Kafka answers a name or version
// that does not match [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? with INVALID_REQUEST
// (ApiVersionsRequest.isValid), and versions before 3 carry neither.
func TestAnswerApiVersionsChecksClientSoftware(t *testing.T) {
	table := APITable{3: {0, 12}, 18: {0, 4}}
	for _, tc := range []struct {
		apiVersion    int16
		name, version string
		valid         bool
	}{
		{3, "kgo", "v1.22.2", true},
		{4, "apache-kafka-java", "3.9.0", true},
		{3, "a", "1", true},
		{3, "librdkafka", "2.6.1-RC2", true},
		{3, "", "1.0", false},
		{3, "kgo", "", false},
		{3, "-kgo", "1.0", false},
		{3, "kgo", "1.0.", false},
		{3, "kgo client", "1.0", false},
		{3, "kgo", "(devel)", false},
		{3, "kgo_go", "1.0", false},
		{2, "", "", true},
		{0, "", "", true},
	} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(tc.apiVersion)
		req.ClientSoftwareName, req.ClientSoftwareVersion = tc.name, tc.version
		resp := table.AnswerApiVersions(req)
		if err := CheckClientSoftware(req); (err == nil) != tc.valid {
			t.Errorf("v%d %q %q: CheckClientSoftware %v, want valid %v", tc.apiVersion, tc.name, tc.version, err, tc.valid)
		}
		switch {
		case tc.valid && (resp.ErrorCode != 0 || len(resp.ApiKeys) != 2):
			t.Errorf("v%d %q %q: error %d with %d keys, want the table", tc.apiVersion, tc.name, tc.version, resp.ErrorCode, len(resp.ApiKeys))
		case !tc.valid && (resp.ErrorCode != 42 || len(resp.ApiKeys) != 0):
			t.Errorf("v%d %q %q: error %d with %d keys, want INVALID_REQUEST (42) and none", tc.apiVersion, tc.name, tc.version, resp.ErrorCode, len(resp.ApiKeys))
		}
	}
}

// KIP-896 removed Produce v0-v2; a table serving Produce from v3 still lists it from v0
// (as Kafka 4.0 does, KAFKA-18659), or librdkafka sends gzip, snappy and lz4 batches
// uncompressed. The listing changes nothing else: a Produce v2 is still refused (the
// connection closed), and the KIP-511 answer lists the same ranges.
func TestProduceAdvertisedFromV0(t *testing.T) {
	table := APITable{produceKey: {3, 12}, 1: {4, 12}, apiVersionsKey: {0, 4}}
	resp := table.ApiVersionsResponse()
	for _, want := range [][3]int16{{produceKey, 0, 12}, {1, 4, 12}, {apiVersionsKey, 0, 4}} {
		if !hasKey(resp, want[0], want[1], want[2]) {
			t.Errorf("ApiVersions lists %+v; want key %d versions %d..%d among them", resp.ApiKeys, want[0], want[1], want[2])
		}
	}
	if kip511 := unsupportedAPIVersions(clampVersions(table.Versions)); !hasKey(kip511, produceKey, 0, 12) {
		t.Errorf("the KIP-511 answer lists %+v; want Produce 0..12", kip511.ApiKeys)
	}
	if got := Advertised(produceKey, APIRange{5, 12}); got != (APIRange{5, 12}) {
		t.Errorf("Produce served from v5 is listed as %+v; only a table serving v3 is widened", got)
	}

	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler), Versions: table.Versions})
	rc := dialRaw(t, addr)
	rc.send("old", 1, produceRequest(3, 1, "t"))
	if id, _ := rc.recv(); id != 1 {
		t.Fatalf("Produce v3 answered with correlation id %d", id)
	}
	rc.send("old", 2, produceRequest(2, 1, "t"))
	rc.expectClosed()
}
