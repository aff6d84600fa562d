package localhost

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsLocal(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"domain.localhost", true},
		{"alice.domain.localhost", true},
		{"alice.domain.localhost.", true},
		{"localhost.com", false},
		{"evillocalhost", false},
		{"domain.localhost.evil.com", false},
		{"example.com", false},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsLocal(tt.host); got != tt.want {
			t.Errorf("IsLocal(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestClientReachesLocalhostNames: Go's resolver does not map *.localhost to
// loopback; this client does, and keeps the Host header for the server.
func TestClientReachesLocalhostNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	resp, err := Client(5 * time.Second).Get("http://alice.domain.localhost:" + port + "/")
	if err != nil {
		t.Fatalf("GET alice.domain.localhost: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "alice.domain.localhost:"+port {
		t.Fatalf("server saw Host %q", body)
	}
	// Other names still go to the ordinary dialer (and fail here: no such host).
	if _, err := Client(2 * time.Second).Get("http://canopy-test.invalid:" + port + "/"); err == nil {
		t.Fatal("a .invalid name was dialled on loopback")
	}
}
