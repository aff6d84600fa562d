package ssohttp

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// refreshHarness runs the refresh script in node with a virtual clock, a fake
// fetch answering the given statuses in turn, and a fake document. It prints
// what the script did as JSON.
const refreshHarness = `
const vm = require("vm");
const [script, expiresIn, lifetime, statuses, until] = JSON.parse(process.argv[2]);
let now = 0;
const timers = [], calls = [], events = [], listeners = {};
const sandbox = {
  document: {
    currentScript: { dataset: { expiresIn, lifetime } }, hidden: false,
    addEventListener: (n, f) => { listeners[n] = f; },
    dispatchEvent: (e) => { events.push([now, e.type]); },
  },
  window: { fetch: true },
  fetch: (url, opts) => {
    calls.push([now, url, opts.method, opts.credentials]);
    let st = statuses.shift(), retryAfter = null;
    if (Array.isArray(st)) [st, retryAfter] = st; // [status, Retry-After]
    if (st === 0) return Promise.reject(new TypeError("network"));
    const headers = { get: (n) => (n.toLowerCase() === "retry-after" ? retryAfter : null) };
    return Promise.resolve({ ok: st >= 200 && st < 300, status: st, headers });
  },
  setTimeout: (f, ms) => { timers.push({ at: now + ms, f }); return timers.length; },
  clearTimeout: (id) => { if (id && timers[id - 1]) timers[id - 1].cancelled = true; },
  Date: { now: () => now, parse: (s) => Date.parse(s) },
  CustomEvent: function (t) { this.type = t; },
};
vm.runInNewContext(script, sandbox);
(async () => {
  for (;;) {
    const next = timers.filter((t) => !t.cancelled && !t.done).sort((a, b) => a.at - b.at)[0];
    if (!next || next.at > until) break;
    now = next.at;
    next.done = true;
    next.f();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
  console.log(JSON.stringify({ calls, events }));
})();
`

func TestRefreshScriptInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found; the refresh script is only checked statically")
	}
	const url = "http://domain.localhost:8080/refresh"
	body := RefreshScriptBody(url)
	harness := filepath.Join(t.TempDir(), "harness.js")
	if err := os.WriteFile(harness, []byte(refreshHarness), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                string
		expiresIn, lifetime string
		statuses            []any     // a status, or [status, Retry-After]
		wantCalls           []float64 // ms of each POST
		wantEvents          []string
	}{
		{"refreshes 30 s before expiry, then every lifetime, stops at 401", "240", "300", []any{204, 204, 401},
			[]float64{210000, 480000, 750000}, []string{"canopy:refreshed", "canopy:refreshed", "canopy:signed-out"}},
		{"retries a failure", "240", "300", []any{500, 0, 204, 401},
			[]float64{210000, 215000, 225000, 495000}, []string{"canopy:refreshed", "canopy:signed-out"}},
		{"short tokens refresh at 80%", "3", "3", []any{204, 401},
			[]float64{2400, 4800}, []string{"canopy:refreshed", "canopy:signed-out"}},
		{"503 waits Retry-After seconds", "240", "300", []any{[]any{503, "7"}, []any{503, "120"}, 204, 401},
			[]float64{210000, 217000, 337000, 607000}, []string{"canopy:refreshed", "canopy:signed-out"}},
		{"Retry-After is bounded", "240", "300", []any{[]any{503, "0"}, []any{503, "99999"}, []any{503, "soon"}, 401},
			[]float64{210000, 211000, 511000, 526000}, []string{"canopy:signed-out"}},
		{"already expired refreshes at once", "-5", "300", []any{401},
			[]float64{0}, []string{"canopy:signed-out"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args, _ := json.Marshal([]any{body, tc.expiresIn, tc.lifetime, tc.statuses, 2_000_000})
			out, err := exec.Command(node, harness, string(args)).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var got struct {
				Calls  [][]any
				Events [][]any
			}
			if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			var at []float64
			for _, c := range got.Calls {
				at = append(at, c[0].(float64))
				if c[1] != url || c[2] != "POST" || c[3] != "include" {
					t.Errorf("call %v", c)
				}
			}
			var ev []string
			for _, e := range got.Events {
				ev = append(ev, e[1].(string))
			}
			if !slices.Equal(at, tc.wantCalls) || !slices.Equal(ev, tc.wantEvents) {
				t.Fatalf("calls at %v, events %v\nwant %v, %v", at, ev, tc.wantCalls, tc.wantEvents)
			}
		})
	}
}
