package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// paramError is a bad request parameter; its message starts with the
// parameter's name.
type paramError struct {
	param string
	msg   string
}

func (e *paramError) Error() string { return e.param + ": " + e.msg }

func badParam(param, format string, args ...any) error {
	return &paramError{param: param, msg: fmt.Sprintf(format, args...)}
}

// parseQuery decodes a raw query string, refusing parameters not in allowed
// and parameters given more than once. It is stricter than url.ParseQuery
// so that each error names the parameter at fault.
func parseQuery(raw string, allowed ...string) (map[string]string, error) {
	out := make(map[string]string, len(allowed))
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, badParam("query", "bad escape in parameter name %q", rawKey)
		}
		if !slices.Contains(allowed, key) {
			if key == "" {
				return nil, badParam("query", "parameter without a name (%q)", part)
			}
			return nil, badParam(key, "unknown parameter (allowed: %s)", strings.Join(allowed, ", "))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, badParam(key, "bad escape in value %q", rawValue)
		}
		if _, dup := out[key]; dup {
			return nil, badParam(key, "given more than once")
		}
		out[key] = value
	}
	return out, nil
}

// parseLimit reads limit: 1-100, default 10 when absent or empty.
func parseLimit(q map[string]string) (int, error) {
	v := q["limit"]
	if v == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, badParam("limit", "must be an integer from 1 to %d, got %q", MaxLimit, v)
	}
	return n, nil
}

// windows are the trending windows, in the order of the error message.
var windows = []string{"1h", "24h", "7d"}

// parseWindow reads window: 1h (default when absent or empty), 24h or 7d.
func parseWindow(q map[string]string) (string, error) {
	v := q["window"]
	if v == "" {
		return "1h", nil
	}
	if !slices.Contains(windows, v) {
		return "", badParam("window", "must be one of %s, got %q", strings.Join(windows, ", "), v)
	}
	return v, nil
}

// parseCity reads city: empty or absent means all cities.
func parseCity(q map[string]string) (string, error) {
	v := q["city"]
	if !utf8.ValidString(v) {
		return "", badParam("city", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > maxCityChars {
		return "", badParam("city", "must be at most %d characters, got %d", maxCityChars, n)
	}
	return v, nil
}

// parseID decodes an id taken from a path segment (still escaped).
func parseID(raw string) (string, error) {
	if strings.Contains(raw, "/") {
		return "", badParam("id", "must be one path segment (escape \"/\" in an id as %%2F), got %q", raw)
	}
	id, err := url.PathUnescape(raw)
	if err != nil {
		return "", badParam("id", "bad escape in %q", raw)
	}
	if !utf8.ValidString(id) {
		return "", badParam("id", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(id); n < 1 || n > maxIDChars {
		return "", badParam("id", "must be 1 to %d characters, got %d", maxIDChars, n)
	}
	return id, nil
}
