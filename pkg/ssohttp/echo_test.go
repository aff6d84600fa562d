package ssohttp_test

import (
	"github.com/canopy-sso/canopy/pkg/ssoecho"
	"github.com/canopy-sso/canopy/pkg/ssohttp"
)

// The middleware's tests run each case through echo as well (ssohttp.EchoWrap).
func init() { ssohttp.EchoWrap = ssoecho.Wrap }
