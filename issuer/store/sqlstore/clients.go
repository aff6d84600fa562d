package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/canopy-sso/canopy/issuer/store"
)

// This file holds the store.ClientStore methods: the OpenID Provider's
// clients, authorization codes and client access tokens.

// oidcKeep is how long expired codes and tokens stay before a later insert
// prunes them: long enough that a replay of an expired code is still
// recognised as a replay.
const oidcKeep = time.Hour

const (
	clientColumns = `id, name, secret_hash, public, redirect_uris, post_logout_redirect_uris,
		backchannel_logout_uri, id_token_alg, require_groups, created_at, secret_rotated_at`
	codeColumns = `hash, client_id, user_id, session_id, redirect_uri, scope, nonce, code_challenge,
		auth_time, amr, created_at, expires_at, used_at, acr`
	tokenColumns = `hash, code_hash, client_id, user_id, session_id, scope, created_at, expires_at, revoked_at`

	qInsertClient    = `INSERT INTO oidc_clients (` + clientColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qClientByID      = `SELECT ` + clientColumns + ` FROM oidc_clients WHERE id = ?`
	qClientByName    = `SELECT ` + clientColumns + ` FROM oidc_clients WHERE name = ?`
	qListClients     = `SELECT ` + clientColumns + ` FROM oidc_clients ORDER BY name`
	qRemoveClient    = `DELETE FROM oidc_clients WHERE id = ?`
	qRemoveCodes     = `DELETE FROM oidc_codes WHERE client_id = ?`
	qRemoveTokens    = `DELETE FROM oidc_tokens WHERE client_id = ?`
	qRemoveRefresh   = `DELETE FROM oidc_refresh_tokens WHERE client_id = ?`
	qSetClientSecret = `UPDATE oidc_clients SET secret_hash = ?, secret_rotated_at = ? WHERE id = ? AND public = ?`

	qInsertCode = `INSERT INTO oidc_codes (` + codeColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qPruneCodes = `DELETE FROM oidc_codes WHERE expires_at < ?`
	// One conditional UPDATE: of concurrent redemptions exactly one changes
	// the row.
	qUseCode         = `UPDATE oidc_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL`
	qCodeByHash      = `SELECT ` + codeColumns + ` FROM oidc_codes WHERE hash = ?`
	qRevokeByCode    = `UPDATE oidc_tokens SET revoked_at = ? WHERE code_hash = ? AND revoked_at IS NULL`
	qRevokeFamily    = `UPDATE oidc_refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`
	qInsertToken     = `INSERT INTO oidc_tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qPruneTokens     = `DELETE FROM oidc_tokens WHERE expires_at < ?`
	qLiveTokenByHash = `SELECT ` + tokenColumns + ` FROM oidc_tokens
		WHERE hash = ? AND revoked_at IS NULL AND expires_at > ?
		AND EXISTS (SELECT 1 FROM oidc_clients c WHERE c.id = oidc_tokens.client_id)`
)

const (
	refreshColumns    = `hash, family_id, client_id, user_id, session_id, scope, auth_time, amr, created_at, superseded_at, revoked_at, acr`
	qInsertRefresh    = `INSERT INTO oidc_refresh_tokens (` + refreshColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qSupersedeRefresh = `UPDATE oidc_refresh_tokens SET superseded_at = ?
		WHERE hash = ? AND client_id = ? AND superseded_at IS NULL AND revoked_at IS NULL`
	qRefreshByHash = `SELECT ` + refreshColumns + ` FROM oidc_refresh_tokens WHERE hash = ? AND client_id = ?`
)

// RefreshRow is an oidc_refresh_tokens row.
type RefreshRow struct {
	Hash         string        `db:"hash"`
	FamilyID     string        `db:"family_id"`
	ClientID     string        `db:"client_id"`
	UserID       string        `db:"user_id"`
	SessionID    string        `db:"session_id"`
	Scope        string        `db:"scope"`
	AuthTime     int64         `db:"auth_time"`
	AMR          string        `db:"amr"`
	CreatedAt    int64         `db:"created_at"`
	SupersededAt sql.NullInt64 `db:"superseded_at"`
	RevokedAt    sql.NullInt64 `db:"revoked_at"`
	ACR          string        `db:"acr"`
}

// ClientRefresh is the row as a store.ClientRefresh.
func (r RefreshRow) ClientRefresh() store.ClientRefresh {
	return store.ClientRefresh{Hash: r.Hash, FamilyID: r.FamilyID, ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID,
		Scope: r.Scope, AuthTime: FromDB(r.AuthTime), AMR: decodeList(r.AMR), ACR: r.ACR, CreatedAt: FromDB(r.CreatedAt)}
}

// ClientRow is an oidc_clients row.
type ClientRow struct {
	ID                     string        `db:"id"`
	Name                   string        `db:"name"`
	SecretHash             string        `db:"secret_hash"`
	Public                 bool          `db:"public"`
	RedirectURIs           string        `db:"redirect_uris"`
	PostLogoutRedirectURIs string        `db:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string        `db:"backchannel_logout_uri"`
	IDTokenAlg             string        `db:"id_token_alg"`
	RequireGroups          string        `db:"require_groups"`
	CreatedAt              int64         `db:"created_at"`
	SecretRotatedAt        sql.NullInt64 `db:"secret_rotated_at"`
}

// Client is the row as a store.Client. A list column that does not decode
// (never written by this code) reads as empty, which admits nothing.
func (r ClientRow) Client() store.Client {
	return store.Client{
		ID: r.ID, Name: r.Name, SecretHash: r.SecretHash, Public: r.Public,
		RedirectURIs: decodeList(r.RedirectURIs), PostLogoutRedirectURIs: decodeList(r.PostLogoutRedirectURIs),
		BackchannelLogoutURI: r.BackchannelLogoutURI, IDTokenAlg: r.IDTokenAlg,
		RequireGroups: decodeList(r.RequireGroups), CreatedAt: FromDB(r.CreatedAt),
		SecretRotatedAt: FromNullDB(r.SecretRotatedAt),
	}
}

// CodeRow is an oidc_codes row.
type CodeRow struct {
	Hash          string        `db:"hash"`
	ClientID      string        `db:"client_id"`
	UserID        string        `db:"user_id"`
	SessionID     string        `db:"session_id"`
	RedirectURI   string        `db:"redirect_uri"`
	Scope         string        `db:"scope"`
	Nonce         string        `db:"nonce"`
	CodeChallenge string        `db:"code_challenge"`
	AuthTime      int64         `db:"auth_time"`
	AMR           string        `db:"amr"`
	CreatedAt     int64         `db:"created_at"`
	ExpiresAt     int64         `db:"expires_at"`
	UsedAt        sql.NullInt64 `db:"used_at"`
	ACR           string        `db:"acr"`
}

// AuthCode is the row as a store.AuthCode.
func (r CodeRow) AuthCode() store.AuthCode {
	return store.AuthCode{
		Hash: r.Hash, ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID,
		RedirectURI: r.RedirectURI, Scope: r.Scope, Nonce: r.Nonce, CodeChallenge: r.CodeChallenge,
		AuthTime: FromDB(r.AuthTime), AMR: decodeList(r.AMR), ACR: r.ACR, CreatedAt: FromDB(r.CreatedAt),
		ExpiresAt: FromDB(r.ExpiresAt), UsedAt: FromNullDB(r.UsedAt),
	}
}

// TokenRow is an oidc_tokens row.
type TokenRow struct {
	Hash      string        `db:"hash"`
	CodeHash  string        `db:"code_hash"`
	ClientID  string        `db:"client_id"`
	UserID    string        `db:"user_id"`
	SessionID string        `db:"session_id"`
	Scope     string        `db:"scope"`
	CreatedAt int64         `db:"created_at"`
	ExpiresAt int64         `db:"expires_at"`
	RevokedAt sql.NullInt64 `db:"revoked_at"`
}

// ClientToken is the row as a store.ClientToken.
func (r TokenRow) ClientToken() store.ClientToken {
	return store.ClientToken{
		Hash: r.Hash, CodeHash: r.CodeHash, ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID,
		Scope: r.Scope, CreatedAt: FromDB(r.CreatedAt), ExpiresAt: FromDB(r.ExpiresAt), RevokedAt: FromNullDB(r.RevokedAt),
	}
}

func encodeList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

func decodeList(s string) []string {
	var l []string
	if json.Unmarshal([]byte(s), &l) != nil {
		return nil
	}
	return l
}

// CreateClient implements store.ClientStore.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	const op = "create client"
	if c.ID == "" || c.Name == "" || len(c.RedirectURIs) == 0 || (c.SecretHash == "") != c.Public {
		return s.d.errorf("%s: need an id, a name, a redirect URI, and a secret exactly when confidential", op)
	}
	return s.insert(ctx, s.db, op, "", s.rebind(qInsertClient),
		c.ID, c.Name, c.SecretHash, c.Public, encodeList(c.RedirectURIs), encodeList(c.PostLogoutRedirectURIs),
		c.BackchannelLogoutURI, c.IDTokenAlg, encodeList(c.RequireGroups), ToDB(c.CreatedAt), ToNullDB(c.SecretRotatedAt))
}

// ClientByID implements store.ClientStore.
func (s *Store) ClientByID(ctx context.Context, id string) (store.Client, error) {
	var r ClientRow
	if err := s.get(ctx, "client", "", &r, s.rebind(qClientByID), id); err != nil {
		return store.Client{}, err
	}
	return r.Client(), nil
}

// ClientByName implements store.ClientStore.
func (s *Store) ClientByName(ctx context.Context, name string) (store.Client, error) {
	var r ClientRow
	if err := s.get(ctx, "client", "", &r, s.rebind(qClientByName), name); err != nil {
		return store.Client{}, err
	}
	return r.Client(), nil
}

// ListClients implements store.ClientStore.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := list[ClientRow](ctx, s, "list clients", s.rebind(qListClients))
	return Convert(rows, ClientRow.Client), err
}

// RemoveClient implements store.ClientStore. The codes and tokens go in the
// same transaction (not left to ON DELETE CASCADE alone), so no backend
// setting can leave a removed client's token working.
func (s *Store) RemoveClient(ctx context.Context, id string) error {
	const op = "remove client"
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, op, s.rebind(qRemoveTokens), id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, op, s.rebind(qRemoveRefresh), id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, op, s.rebind(qRemoveCodes), id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, op, s.rebind(qRemoveClientGrants), id); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, op, s.rebind(qRemoveClientOutbox), id); err != nil {
			return err
		}
		return s.execOne(ctx, tx, op, "", s.rebind(qRemoveClient), id)
	})
}

// SetClientSecret implements store.ClientStore.
func (s *Store) SetClientSecret(ctx context.Context, id, secretHash string, now time.Time) error {
	if secretHash == "" {
		return s.d.errorf("set client secret: empty hash")
	}
	return s.execOne(ctx, s.db, "set client secret", "", s.rebind(qSetClientSecret), secretHash, ToDB(now), id, false)
}

// CreateCode implements store.ClientStore.
func (s *Store) CreateCode(ctx context.Context, c store.AuthCode) error {
	const op = "create code"
	if c.Hash == "" {
		return s.d.errorf("%s: empty hash", op)
	}
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, op, s.rebind(qPruneCodes), ToDB(c.CreatedAt.Add(-oidcKeep))); err != nil {
			return err
		}
		return s.insert(ctx, tx, op, "", s.rebind(qInsertCode),
			c.Hash, c.ClientID, c.UserID, c.SessionID, c.RedirectURI, c.Scope, c.Nonce, c.CodeChallenge,
			ToDB(c.AuthTime), encodeList(c.AMR), ToDB(c.CreatedAt), ToDB(c.ExpiresAt), ToNullDB(c.UsedAt), c.ACR)
	})
}

// RedeemCode implements store.ClientStore: the conditional UPDATE decides,
// then the row is read in the same transaction. A loser finds the code used
// and revokes what it issued before returning ErrReuse.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time) (store.AuthCode, error) {
	const op = "redeem code"
	var code store.AuthCode
	var reused bool
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		reused = false
		n, err := s.exec(ctx, tx, op, s.rebind(qUseCode), ToDB(now), hash)
		if err != nil {
			return err
		}
		var r CodeRow
		if err := s.getTx(ctx, tx, op, "", &r, s.rebind(qCodeByHash), hash); err != nil {
			return err
		}
		code = r.AuthCode()
		if n == 1 {
			return nil
		}
		reused = true
		return s.revokeFamily(ctx, tx, op, hash, now)
	})
	if err != nil {
		return store.AuthCode{}, err
	}
	if reused {
		return code, s.d.fail(op, "", store.ErrReuse)
	}
	return code, nil
}

// revokeFamily revokes every refresh token of the family begun by the code
// whose hash is family, and every access token issued in it.
func (s *Store) revokeFamily(ctx context.Context, tx *sqlx.Tx, op, family string, now time.Time) error {
	if _, err := s.exec(ctx, tx, op, s.rebind(qRevokeByCode), ToDB(now), family); err != nil {
		return err
	}
	_, err := s.exec(ctx, tx, op, s.rebind(qRevokeFamily), ToDB(now), family)
	return err
}

// CreateClientRefresh implements store.ClientStore.
func (s *Store) CreateClientRefresh(ctx context.Context, r store.ClientRefresh) error {
	if r.Hash == "" || r.FamilyID == "" {
		return s.d.errorf("create client refresh token: empty hash or family")
	}
	return s.insert(ctx, s.db, "create client refresh token", "", s.rebind(qInsertRefresh),
		r.Hash, r.FamilyID, r.ClientID, r.UserID, r.SessionID, r.Scope, ToDB(r.AuthTime), encodeList(r.AMR), ToDB(r.CreatedAt), nil, nil, r.ACR)
}

// RotateClientRefresh implements store.ClientStore: the conditional UPDATE
// decides which of concurrent rotations wins; a loser finds the token
// superseded and revokes its family, as reuse of a stolen token would.
func (s *Store) RotateClientRefresh(ctx context.Context, clientID, presentedHash, successorHash string, now time.Time) (store.ClientRefresh, error) {
	const op = "rotate client refresh token"
	var rec store.ClientRefresh
	var reused bool
	err := s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		reused = false
		n, err := s.exec(ctx, tx, op, s.rebind(qSupersedeRefresh), ToDB(now), presentedHash, clientID)
		if err != nil {
			return err
		}
		var r RefreshRow
		if err := s.getTx(ctx, tx, op, "", &r, s.rebind(qRefreshByHash), presentedHash, clientID); err != nil {
			return err
		}
		rec = r.ClientRefresh()
		if n == 1 {
			return s.insert(ctx, tx, op, "", s.rebind(qInsertRefresh), successorHash, r.FamilyID, r.ClientID, r.UserID,
				r.SessionID, r.Scope, r.AuthTime, r.AMR, ToDB(now), nil, nil, r.ACR)
		}
		if r.RevokedAt.Valid {
			return s.d.fail(op, "", store.ErrNotFound)
		}
		reused = true
		return s.revokeFamily(ctx, tx, op, r.FamilyID, now)
	})
	if err != nil {
		return store.ClientRefresh{}, err
	}
	if reused {
		return rec, s.d.fail(op, "", store.ErrReuse)
	}
	return rec, nil
}

// CreateClientToken implements store.ClientStore.
func (s *Store) CreateClientToken(ctx context.Context, t store.ClientToken) error {
	const op = "create client token"
	if t.Hash == "" {
		return s.d.errorf("%s: empty hash", op)
	}
	return s.inTx(ctx, op, func(tx *sqlx.Tx) error {
		if _, err := s.exec(ctx, tx, op, s.rebind(qPruneTokens), ToDB(t.CreatedAt.Add(-oidcKeep))); err != nil {
			return err
		}
		if err := s.recordGrant(ctx, tx, t); err != nil {
			return err
		}
		return s.insert(ctx, tx, op, "", s.rebind(qInsertToken),
			t.Hash, t.CodeHash, t.ClientID, t.UserID, t.SessionID, t.Scope, ToDB(t.CreatedAt), ToDB(t.ExpiresAt), ToNullDB(t.RevokedAt))
	})
}

// ClientToken implements store.ClientStore.
func (s *Store) ClientToken(ctx context.Context, hash string, now time.Time) (store.ClientToken, error) {
	var r TokenRow
	if err := s.get(ctx, "client token", "", &r, s.rebind(qLiveTokenByHash), hash, ToDB(now)); err != nil {
		return store.ClientToken{}, err
	}
	return r.ClientToken(), nil
}

var _ store.ClientStore = (*Store)(nil)
