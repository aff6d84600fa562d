// Package wire defines, once, what the issuer and every relying service
// exchange: the discovery document and its canopy_ fields, the access
// token's type and algorithms, the authentication methods a token may carry,
// the grammar of group names, and the revocation feed's entries. The issuer
// writes these and pkg/sso reads them; neither keeps a copy of its own.
package wire
