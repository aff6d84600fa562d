package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestPageTemplateFailure: a page whose template fails to render answers a
// 500 with the short public message, never an empty 200, and the cause
// reaches the log only.
func TestPageTemplateFailure(t *testing.T) {
	h := newHarness(t, options{})
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
	if err := h.srv.page(c, http.StatusOK, "no-such-page", pageData{}); err != nil {
		h.srv.errorHandler(err, c)
	}
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500; body %q", rec.Code, rec.Body.String())
	}
	if body := rec.Body.String(); !strings.Contains(body, "Something went wrong on our side") || strings.Contains(body, "no-such-page") {
		t.Fatalf("body does not carry the public message alone:\n%s", body)
	}
}
