package trustedproxy

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{" , ", nil, false},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}, false},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}, false},
		{"127.0.0.1", []string{"127.0.0.1/32"}, false},
		{"::1, 192.168.0.0/16", []string{"::1/128", "192.168.0.0/16"}, false},
		{"::ffff:10.0.0.1", []string{"10.0.0.1/32"}, false},
		{"10.0.0.0/33", nil, true},
		{"example.com", nil, true},
		{"10.0.0.1, nonsense, 10.0.0.0/99", nil, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q): err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i].String() != tc.want[i] {
				t.Errorf("Parse(%q)[%d] = %v, want %v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestFrom(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:1234", true},
		{"[::ffff:127.0.0.1]:1234", true},
		{"[fd00::1]:80", true},
		{"10.0.0.1:1234", false},
		{"garbage", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if got := From(r, trusted); got != tc.want {
			t.Errorf("From(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	if From(r, nil) {
		t.Error("no trusted proxies trusts a request")
	}
}
