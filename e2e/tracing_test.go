package e2e

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is one span the receiver collected, with its service.
type span struct {
	service        string
	name           string
	traceID, id    string
	parent         string
	attrs          map[string]string
	allAttrStrings []string // every key=value, span and resource
}

// otlpReceiver accepts OTLP/HTTP protobuf exports (POST /v1/traces) and
// decodes them with the protocol's generated types.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("receiver: %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "want POST /v1/traces protobuf", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		if err != nil {
			t.Errorf("receiver: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.add(&req)
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func attrString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	}
	return v.String()
}

func (rc *otlpReceiver) add(req *collectortrace.ExportTraceServiceRequest) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		var resAttrs []string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = attrString(kv.GetValue())
			}
			resAttrs = append(resAttrs, kv.GetKey()+"="+attrString(kv.GetValue()))
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				rc.spans = append(rc.spans, toSpan(service, resAttrs, sp))
			}
		}
	}
}

func toSpan(service string, resAttrs []string, sp *tracepb.Span) span {
	s := span{service: service, name: sp.GetName(), traceID: hex.EncodeToString(sp.GetTraceId()),
		id: hex.EncodeToString(sp.GetSpanId()), parent: hex.EncodeToString(sp.GetParentSpanId()),
		attrs: map[string]string{}, allAttrStrings: append([]string{"status=" + sp.GetStatus().GetMessage()}, resAttrs...)}
	for _, kv := range sp.GetAttributes() {
		s.attrs[kv.GetKey()] = attrString(kv.GetValue())
		s.allAttrStrings = append(s.allAttrStrings, kv.GetKey()+"="+attrString(kv.GetValue()))
	}
	for _, ev := range sp.GetEvents() {
		for _, kv := range ev.GetAttributes() {
			s.allAttrStrings = append(s.allAttrStrings, ev.GetName()+"."+kv.GetKey()+"="+attrString(kv.GetValue()))
		}
	}
	return s
}

// waitSpans waits until pred holds over the spans collected.
func (rc *otlpReceiver) waitSpans(t *testing.T, what string, pred func([]span) bool) []span {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rc.mu.Lock()
		spans := append([]span(nil), rc.spans...)
		rc.mu.Unlock()
		if pred(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.service+"/"+s.name)
			}
			t.Fatalf("no %s among the spans collected: %v", what, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func find(spans []span, pred func(span) bool) (span, bool) {
	for _, s := range spans {
		if pred(s) {
			return s, true
		}
	}
	return span{}, false
}

// TestTracing runs the issuer and relying with the standard OTEL_*
// variables pointing at a receiver in the test: a sign-in, a refresh and a
// proxied request are traced, traceparent reaches the upstream, and no
// span holds a token, a password or a cookie.
func TestTracing(t *testing.T) {
	rc := newOTLPReceiver(t)
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rc.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_SDK_DISABLED=false"}
	s := &stack{dir: t.TempDir(), domain: "domain.localhost"}
	s.issuerPort = freePort(t)
	s.issuerURL = fmt.Sprintf("http://%s:%d", s.domain, s.issuerPort)
	s.issuer = startEnv(t, env, "issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", s.issuerPort), "--url", s.issuerURL,
		"--db", filepath.Join(s.dir, "issuer.db"), "--keys", filepath.Join(s.dir, "keys"))
	waitHTTP(t, s.issuerURL+"/healthz", s.issuer)

	var gotTraceparent sync.Map
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent.Store(r.URL.Path, r.Header.Get("Traceparent"))
		fmt.Fprintln(w, "hello", r.Header.Get("X-Canopy-User"))
	}))
	t.Cleanup(app.Close)
	file := filepath.Join(t.TempDir(), "relying.yaml")
	writePolicy(t, file, "issuer: "+s.issuerURL+"\nhosts:\n  - host: app.domain.localhost\n    upstream: "+app.URL+"\n")
	_, port := startPolicyRelying(t, file, append(env, "OTEL_SERVICE_NAME=relying-under-test"))
	appURL := fmt.Sprintf("http://app.%s:%d/", s.domain, port)

	if out, err := s.issuerCmd(t, alicePW+"\n", "user", "add", "alice"); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	b := newBrowser(t)
	if r := s.signIn(t, b, "alice", alicePW, appURL); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.status)
	}
	if r := b.navigate(s.issuerURL + "/refresh?return_to=" + appURL); r.status != http.StatusSeeOther {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	token := b.cookie(appURL, "canopy").Value
	refreshCookie := b.cookie(s.issuerURL+"/refresh", "canopy-refresh")

	// The caller's own trace: relying's span must join it.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, path := range []string{"/first", "/second"} {
		req, _ := http.NewRequest("GET", appURL[:len(appURL)-1]+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
		if r := b.do(req); r.status != http.StatusOK || !strings.Contains(r.body, "hello alice") {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
	}

	spans := rc.waitSpans(t, "sign-in, refresh, jwks fetch and two proxied requests", func(ss []span) bool {
		n := 0
		for _, name := range []string{"issuer.sign_in", "issuer.refresh", "canopy.jwks.fetch"} {
			if _, ok := find(ss, func(s span) bool { return s.name == name }); ok {
				n++
			}
		}
		proxies := 0
		for _, s := range ss {
			if s.name == "relying.proxy" {
				proxies++
			}
		}
		return n == 3 && proxies == 2
	})

	signIn, _ := find(spans, func(s span) bool { return s.name == "issuer.sign_in" })
	if signIn.service != "canopy-issuer" || signIn.attrs["http.request.method"] != "POST" || signIn.attrs["http.response.status_code"] != "303" {
		t.Errorf("sign-in span: %+v", signIn)
	}
	t.Logf("sign-in trace: %s/%s trace=%s span=%s attrs=%v", signIn.service, signIn.name, signIn.traceID, signIn.id, signIn.attrs)

	// One proxied request: request → verify and proxy, in the caller's trace.
	for i, path := range []string{"/first", "/second"} {
		var proxy span
		n := 0
		for _, s := range spans {
			if s.name == "relying.proxy" {
				if n == i {
					proxy = s
				}
				n++
			}
		}
		req, ok := find(spans, func(s span) bool { return s.id == proxy.parent })
		if !ok || req.name != "relying.request" || req.traceID != callerTrace || req.parent != callerSpan ||
			req.service != "relying-under-test" || proxy.traceID != callerTrace {
			t.Fatalf("%s: proxy span %+v, its parent %+v: want relying.request in the caller's trace", path, proxy, req)
		}
		verify, ok := find(spans, func(s span) bool { return s.name == "canopy.verify" && s.parent == req.id })
		want := []string{"cold", "cached"}[i]
		if !ok || verify.attrs["canopy.verify.cache"] != want || verify.attrs["canopy.verify.outcome"] != "accepted" {
			t.Errorf("%s: verify span %+v, want a child of the request, %s and accepted", path, verify, want)
		}
		tp, _ := gotTraceparent.Load(path)
		if wantTP := "00-" + callerTrace + "-" + proxy.id + "-01"; tp != wantTP {
			t.Errorf("%s: the upstream got traceparent %q, want %q", path, tp, wantTP)
		}
		if i == 0 {
			t.Logf("proxied request trace %s: %s (parent %s, the caller's) → canopy.verify %s (%s) and relying.proxy %s → upstream traceparent %v",
				req.traceID, req.id, req.parent, verify.id, want, proxy.id, tp)
		}
	}

	// No secret in any attribute, status or resource.
	secrets := map[string]string{"access token": token, "password": alicePW, "token signature": token[strings.LastIndex(token, ".")+1:]}
	if refreshCookie != nil {
		secrets["refresh cookie"] = refreshCookie.Value
	}
	for _, s := range spans {
		for _, kv := range s.allAttrStrings {
			lower := strings.ToLower(kv)
			for name, v := range secrets {
				if v != "" && strings.Contains(kv, v) {
					t.Errorf("span %s/%s carries the %s: %.80s", s.service, s.name, name, kv)
				}
			}
			for _, bad := range []string{"cookie", "authorization", "password", "bearer"} {
				if strings.Contains(lower, bad) {
					t.Errorf("span %s/%s has an attribute about %s: %.80s", s.service, s.name, bad, kv)
				}
			}
		}
	}
}
