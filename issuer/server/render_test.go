package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// brokenView names a real template but lacks the fields it reads, so that
// rendering fails part-way through the page.
type brokenView struct{ frame }

func (*brokenView) template() string { return "message" }

// missingView names no template at all.
type missingView struct{ frame }

func (*missingView) template() string { return "no-such-page" }

// TestPageTemplateFailure: a page whose template fails to render answers a
// 500 with the short public message, never an empty or partial 200, and the
// cause reaches the log only.
func TestPageTemplateFailure(t *testing.T) {
	h := newHarness(t, options{})
	tests := []struct {
		name  string
		v     view
		cause string // in the error, never in the body
	}{
		{"execution fails", &brokenView{}, "can't evaluate field"},
		{"no such template", &missingView{}, "no-such-page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
			err := h.srv.page(c, http.StatusOK, tt.v)
			if err == nil || !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("page returned %v, want an error with %q", err, tt.cause)
			}
			h.srv.errorHandler(err, c)
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500; body %q", rec.Code, rec.Body.String())
			}
			body := rec.Body.String()
			if !strings.Contains(body, "Something went wrong on our side") || strings.Contains(body, tt.cause) {
				t.Fatalf("body does not carry the public message alone:\n%s", body)
			}
		})
	}
}
