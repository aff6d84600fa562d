package username_test

import (
	"errors"
	"fmt"

	"github.com/canopy-sso/canopy/pkg/username"
)

func ExampleNormalize() {
	for _, in := range []string{"Alice", "-bob", "www", "\u212aate", " carol"} {
		name, err := username.Normalize(in)
		switch {
		case errors.Is(err, username.ErrReserved):
			// A handler might answer 409 here, as for a name already taken.
			fmt.Printf("%+q: taken: username %v\n", in, err)
		case err != nil:
			fmt.Printf("%+q: username %v\n", in, err)
		default:
			fmt.Printf("%+q: stored as %q\n", in, name)
		}
	}
	// Output:
	// "Alice": stored as "alice"
	// "-bob": username cannot start or end with -
	// "www": taken: username is reserved
	// "\u212aate": username may contain only a-z, 0-9 and -
	// " carol": username may contain only a-z, 0-9 and -
}

func ExampleValidLabel() {
	// A relying service answers 404 for a host label no user could own.
	for _, label := range []string{"alice", "Alice", "xn--80ak6aa92e", "www"} {
		fmt.Println(label, username.ValidLabel(label))
	}
	// Output:
	// alice true
	// Alice false
	// xn--80ak6aa92e false
	// www true
}

func ExampleRules_Normalize() {
	rules, err := username.NewRules("billing")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = rules.Normalize("Billing")
	fmt.Println(err)
	// Output: is reserved
}

func ExampleLookup() {
	// Finding an existing user: reserved names are looked up like any other,
	// since their owner may have had them before they were reserved.
	for _, in := range []string{"Admin", "alice", "a b"} {
		name, err := username.Lookup(in)
		fmt.Printf("%q %q %v\n", in, name, err)
	}
	// Output:
	// "Admin" "admin" <nil>
	// "alice" "alice" <nil>
	// "a b" "" may contain only a-z, 0-9 and -
}

func ExampleRules_With() {
	rules, _ := username.NewRules("billing")
	// The issuer on idp.example.com: idp.example.com is no user's page.
	rules, err := rules.With("idp")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rules.IsReserved("IDP"), rules.IsReserved("billing"), rules.IsReserved("alice"))
	// Output: true true false
}
