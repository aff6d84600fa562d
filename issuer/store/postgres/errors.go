package postgres

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/canopy-sso/canopy/issuer/store"
)

// unavailable reports whether err means the server cannot be reached or
// cannot serve us now (down, restarting, failed over, out of connections or
// disk), rather than a problem with one request.
func unavailable(err error) bool {
	if errors.Is(err, store.ErrUnavailable) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true // refused, unknown host, authentication, too many clients…
	}
	if pgconn.Timeout(err) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return unavailableCode(pe.Code)
	}
	return connLost(err)
}

// unavailableCode reports whether a SQLSTATE says the server, not the
// request, is the problem.
func unavailableCode(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources: disk full, out of memory, too many connections
		return true
	case strings.HasPrefix(code, "57P"): // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped
		return true
	case code == "25006": // read_only_sql_transaction: connected to a standby, e.g. after a fail-over
		return true
	case code == "58030": // io_error
		return true
	}
	return false
}

// connLost reports whether err means the connection died under the
// request: the server closed it (a restart, pg_terminate_backend, a
// fail-over) or the network dropped it. Unlike a refused connection, trying
// again on a new connection may well succeed at once.
func connLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &ne) || pgconn.SafeToRetry(err)
}

// retryable reports whether the server aborted the transaction only because
// of a concurrent one (serialization failure, deadlock): running it again is
// the documented remedy.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgCode returns a test for errors with the given SQLSTATE.
func pgCode(code string) func(error) bool {
	return func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == code
	}
}
