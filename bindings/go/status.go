package oauthlock

import (
	"encoding/json"
	"time"
)

// Status is what Store.Status and Store.List report: they never lock and never refresh.
// Tokens appear only as fingerprints. Times are the zero Time when absent.
type Status struct {
	Key  string
	Path string
	// A record exists (it may still be unreadable: see Problem).
	Exists     bool
	Generation uint64
	// "ok" or "needs_login"; "" without a readable record.
	State            string
	HasAccessToken   bool
	HasRefreshToken  bool
	HasRefreshConfig bool
	// The mirror file kept in step (DESIGN.md §6.1), if any, and whose it is
	// ("claude_code", "codex").
	MirrorPath  string
	MirrorShape string
	ExpiresAt   time.Time
	IssuedAt    time.Time
	// When the refresh token was last rotated.
	RefreshTokenIssuedAt time.Time
	// Why the last refresh failed, if it did.
	LastError *LastError
	// No process refreshes before this (a failed refresh's shared backoff).
	BackoffUntil time.Time
	UpdatedAt    time.Time
	// Which process wrote the record last ({"lang", "pid", ...}).
	UpdatedBy               map[string]any
	AccessTokenFingerprint  string
	RefreshTokenFingerprint string
	InsecurePermissions     bool
	NetworkFS               bool
	// Why an existing record cannot be read (Corrupt, UnsupportedFormat, Io).
	Problem *Problem
}

// LastError is the OAuth error of the last failed refresh: a dead refresh token (the state
// is then needs_login) or a client or configuration error (the state stays ok).
type LastError struct {
	// The OAuth error string ("invalid_grant", "invalid_client", ...).
	Code        string
	Description string
	At          time.Time
}

// Problem says why a record could not be read.
type Problem struct {
	Code    Code
	Message string
}

func ms(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.UnixMilli(*p)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// UnmarshalJSON reads the library's status JSON.
func (s *Status) UnmarshalJSON(b []byte) error {
	var j struct {
		Key                     string         `json:"key"`
		Path                    string         `json:"path"`
		Exists                  bool           `json:"exists"`
		Generation              *uint64        `json:"generation"`
		State                   *string        `json:"state"`
		HasAccessToken          bool           `json:"has_access_token"`
		HasRefreshToken         bool           `json:"has_refresh_token"`
		HasRefreshConfig        bool           `json:"has_refresh_config"`
		MirrorPath              *string        `json:"mirror_path"`
		MirrorShape             *string        `json:"mirror_shape"`
		ExpiresAtMs             *int64         `json:"expires_at_ms"`
		IssuedAtMs              *int64         `json:"issued_at_ms"`
		RefreshTokenIssuedAtMs  *int64         `json:"refresh_token_issued_at_ms"`
		BackoffUntilMs          *int64         `json:"backoff_until_ms"`
		UpdatedAtMs             *int64         `json:"updated_at_ms"`
		UpdatedBy               map[string]any `json:"updated_by"`
		AccessTokenFingerprint  *string        `json:"access_token_fingerprint"`
		RefreshTokenFingerprint *string        `json:"refresh_token_fingerprint"`
		InsecurePermissions     bool           `json:"insecure_permissions"`
		NetworkFS               bool           `json:"network_fs"`
		LastError               *struct {
			Code        string  `json:"code"`
			Description *string `json:"description"`
			AtMs        *int64  `json:"at_ms"`
		} `json:"last_error"`
		Problem *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"problem"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Status{
		Key:                     j.Key,
		Path:                    j.Path,
		Exists:                  j.Exists,
		State:                   str(j.State),
		HasAccessToken:          j.HasAccessToken,
		HasRefreshToken:         j.HasRefreshToken,
		HasRefreshConfig:        j.HasRefreshConfig,
		MirrorPath:              str(j.MirrorPath),
		MirrorShape:             str(j.MirrorShape),
		ExpiresAt:               ms(j.ExpiresAtMs),
		IssuedAt:                ms(j.IssuedAtMs),
		RefreshTokenIssuedAt:    ms(j.RefreshTokenIssuedAtMs),
		BackoffUntil:            ms(j.BackoffUntilMs),
		UpdatedAt:               ms(j.UpdatedAtMs),
		UpdatedBy:               j.UpdatedBy,
		AccessTokenFingerprint:  str(j.AccessTokenFingerprint),
		RefreshTokenFingerprint: str(j.RefreshTokenFingerprint),
		InsecurePermissions:     j.InsecurePermissions,
		NetworkFS:               j.NetworkFS,
	}
	if j.Generation != nil {
		s.Generation = *j.Generation
	}
	if j.LastError != nil {
		s.LastError = &LastError{Code: j.LastError.Code, Description: str(j.LastError.Description), At: ms(j.LastError.AtMs)}
	}
	if j.Problem != nil {
		s.Problem = &Problem{Code: codeNamed(j.Problem.Code), Message: j.Problem.Message}
	}
	return nil
}
