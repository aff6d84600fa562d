package returnurl_test

import (
	"fmt"

	"github.com/canopy-sso/canopy/pkg/returnurl"
)

func ExamplePolicy_Check() {
	p := returnurl.Policy{Domain: "domain.com"}
	for _, raw := range []string{
		"https://alice.domain.com/notes?id=7",
		"https://app.domain.com:8443/p?next=//evil.com",
		"https://domain.com.evil.com/",
		"https://domain.com@evil.com/",
		"//evil.com",
		"http://alice.domain.com/",
	} {
		_, ok := p.Check(raw)
		fmt.Println(ok, raw)
	}
	// Output:
	// true https://alice.domain.com/notes?id=7
	// true https://app.domain.com:8443/p?next=//evil.com
	// false https://domain.com.evil.com/
	// false https://domain.com@evil.com/
	// false //evil.com
	// false http://alice.domain.com/
}

func ExamplePolicy_Clean() {
	// Development: plain http, but only under .localhost.
	p := returnurl.Policy{Domain: "domain.localhost", AllowHTTP: true}
	fmt.Println(p.Clean("http://alice.domain.localhost:8081/", "/"))
	fmt.Println(p.Clean("http://evil.com/", "/"))
	// Output:
	// http://alice.domain.localhost:8081/
	// /
}
