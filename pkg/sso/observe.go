package sso

// Observer is told what the verifier and the key set do, so that a service can
// export metrics (the relying example turns these into Prometheus counters).
// Its methods run on the request path: they must be cheap and safe for
// concurrent use.
type Observer interface {
	// Verified reports one verification: reason is "" when the token was
	// accepted, else Reason(err); cached is true when the verified-token
	// cache answered without a signature check.
	Verified(reason string, cached bool)
	// KeySetFetched reports one fetch of the key set: "updated",
	// "not_modified" or "error".
	KeySetFetched(outcome string)
}

// Key-set fetch outcomes passed to Observer.KeySetFetched.
const (
	FetchUpdated     = "updated"
	FetchNotModified = "not_modified"
	FetchError       = "error"
)
