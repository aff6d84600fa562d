# Canopy: single sign-on for a parent domain and all its subdomains.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The issuer's URL and the relying examples of `make run`.
ISSUER_URL  ?= http://domain.localhost:8080
# A second root domain the same issuer serves (a different site to the
# browser), with one more relying example under it.
OTHER_URL   ?= http://other.localhost:8080
# The account page's "your page" link: the per-user relying example below.
USER_PAGE_URL ?= http://{username}.domain.localhost:8081

.PHONY: all build run test vet staticcheck fmt-check bench bench-peers bench-load fuzz clean

all: build

build:
	@mkdir -p bin
	$(GO) build -o bin/issuer ./issuer
	$(GO) build -o bin/relying ./relying

# Runs the issuer on :8080 (domain.localhost, and other.localhost as a
# second root domain), the per-user relying example on :8081, a fixed-host
# relying example on :8082 and one under the second domain on :8083 until
# Ctrl-C. State lives in var/.
run: build
	@mkdir -p var
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	./bin/issuer serve --listen 127.0.0.1:8080 --url $(ISSUER_URL) --url $(OTHER_URL) --db var/issuer.db --keys var/keys --user-page-url '$(USER_PAGE_URL)' & issuer=$$!; \
	sleep 1; \
	kill -0 $$issuer 2>/dev/null || { echo "make run: the issuer did not start (see its message above)"; exit 1; }; \
	./bin/relying --listen 127.0.0.1:8081 --issuer $(ISSUER_URL) --host '{username}.domain.localhost' & users=$$!; \
	./bin/relying --listen 127.0.0.1:8082 --issuer $(ISSUER_URL) --host app.domain.localhost & app=$$!; \
	./bin/relying --listen 127.0.0.1:8083 --issuer $(OTHER_URL) --host app.other.localhost & other=$$!; \
	sleep 1; \
	kill -0 $$users 2>/dev/null && kill -0 $$app 2>/dev/null && kill -0 $$other 2>/dev/null || { echo "make run: a relying service did not start (see above)"; exit 1; }; \
	echo; \
	echo "Canopy is running. Open these in your browser:"; \
	echo "  http://alice.domain.localhost:8081   a user's own page (any username works: bob., carol., ...)"; \
	echo "  http://app.domain.localhost:8082     an app on another subdomain, same sign-in"; \
	echo "  http://app.other.localhost:8083      an app on another root domain, same sign-in"; \
	echo "  http://domain.localhost:8080         the issuer: sign up, sign in, your account"; \
	echo "Press Ctrl-C to stop."; \
	echo; \
	wait

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# bench/ is a nested module: vet it too, so a dependency change in this
# module that the benchmarks' go.mod does not follow fails here, not in make bench.
vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

# Every test, with the race detector. Browser tests need Chromium: they are
# skipped loudly without it, and fail with CANOPY_REQUIRE_BROWSER=1.
test: fmt-check vet staticcheck
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		command -v google-chrome >/dev/null 2>&1 || \
		echo "*** BROWSER TESTS WILL BE SKIPPED: no Chromium found (Debian: apt-get install chromium) ***"
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		echo "*** POSTGRESQL TESTS WILL BE SKIPPED: no PostgreSQL found (Debian: apt-get install postgresql) ***"
	$(GO) test -race -count=1 -timeout 20m ./...

# The benchmarks and the load test, summarised in one table of medians,
# ratios and targets (about nine minutes on 2 cores). bench/ is a nested module,
# so the comparison libraries never enter this module's dependencies. For raw
# figures: go test -run '^$$' -bench . -benchmem ./...
bench: build
	cd bench && $(GO) run ./cmd/summary -repo .. -bin ../bin

# Canopy's verifier beside go-oidc, jwx and golang-jwt+keyfunc, one token per algorithm (EdDSA, ES256).
bench-peers:
	cd bench && $(GO) run ./cmd/summary -peers

# The load test alone, 10 s per scenario: relying's page with and without the
# middleware, and POST /refresh at 64 clients on a million stored sessions:
# SQLite with group commit against one fsync per rotation, and PostgreSQL with
# one and with two issuer instances, each pair in alternating rounds.
bench-load: build
	cd bench && $(GO) run ./cmd/loadtest -bin ../bin -repo ..

clean:
	rm -rf bin var
