package metricsrv

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "canopy_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "canopy_test_total 3") {
		t.Fatalf("/metrics lacks the counter:\n%s", body)
	}
	if _, err := Serve(ctx, addr.String(), reg); err == nil {
		t.Fatal("a second listener on the same address succeeded")
	}
}
