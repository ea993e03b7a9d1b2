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
