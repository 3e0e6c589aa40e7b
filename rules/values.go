package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Duration is a YAML duration ("2s", "150ms"). Decoding only keeps the text;
// validation parses it, so a bad value is reported with its line and column.
type Duration struct {
	raw string
	set bool
	d   time.Duration
}

// UnmarshalYAML keeps the scalar's text for validation.
func (d *Duration) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	d.raw, d.set = s, true
	return nil
}

// MarshalYAML writes the duration back as text.
func (d Duration) MarshalYAML() (any, error) { return d.raw, nil }

// IsZero says the file did not set it: `check --print` leaves it out of the
// file as read, which then reads back.
func (d Duration) IsZero() bool { return !d.set }

func (d *Duration) parse() error {
	if !d.set {
		return nil
	}
	v, err := time.ParseDuration(strings.TrimSpace(d.raw))
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration; write a positive number with a unit, like 2s or 150ms", d.raw)
	}
	d.d = v
	return nil
}

// Or returns the parsed duration, or def when the YAML named none.
func (d Duration) Or(def time.Duration) time.Duration {
	if !d.set {
		return def
	}
	return d.d
}

// ByteSize is a size in bytes, written as a number or with a unit
// ("64KiB", "1MiB", "10MB").
type ByteSize struct {
	raw string
	set bool
	n   int64
}

// UnmarshalYAML keeps the scalar's text for validation.
func (s *ByteSize) UnmarshalYAML(b []byte) error {
	var v string
	if err := yaml.Unmarshal(b, &v); err != nil {
		return err
	}
	s.raw, s.set = v, true
	return nil
}

// MarshalYAML writes the size back as text.
func (s ByteSize) MarshalYAML() (any, error) { return s.raw, nil }

// IsZero says the file did not set it.
func (s ByteSize) IsZero() bool { return !s.set }

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

func (s *ByteSize) parse() error {
	if !s.set {
		return nil
	}
	text := strings.TrimSpace(s.raw)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size; write a number of bytes or use KiB, MiB or GiB, like 1MiB", s.raw)
	}
	s.n = n * mult
	return nil
}

// Or returns the size in bytes, or def when the YAML named none.
func (s ByteSize) Or(def int64) int64 {
	if !s.set {
		return def
	}
	return s.n
}

// StatusRange is a set of HTTP status codes: 201, "2xx" or "200-299".
type StatusRange struct {
	raw    string
	lo, hi int
}

// UnmarshalYAML keeps the scalar's text for validation.
func (r *StatusRange) UnmarshalYAML(b []byte) error {
	var v string
	if err := yaml.Unmarshal(b, &v); err != nil {
		return err
	}
	r.raw = v
	return nil
}

// MarshalYAML writes the range back as text.
func (r StatusRange) MarshalYAML() (any, error) { return r.raw, nil }

func (r *StatusRange) parse() error {
	text := strings.TrimSpace(r.raw)
	bad := fmt.Errorf("%q is not a status range; write a code (201), a class (2xx) or a range (200-299)", r.raw)
	switch {
	case len(text) == 3 && strings.HasSuffix(strings.ToLower(text), "xx"):
		c := text[0]
		if c < '1' || c > '5' {
			return bad
		}
		r.lo = int(c-'0') * 100
		r.hi = r.lo + 99
	case strings.Contains(text, "-"):
		a, b, _ := strings.Cut(text, "-")
		lo, err1 := strconv.Atoi(strings.TrimSpace(a))
		hi, err2 := strconv.Atoi(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
			return bad
		}
		r.lo, r.hi = lo, hi
	default:
		n, err := strconv.Atoi(text)
		if err != nil || n < 100 || n > 599 {
			return bad
		}
		r.lo, r.hi = n, n
	}
	return nil
}

// Contains reports whether code is in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.lo && code <= r.hi }

func (r StatusRange) String() string { return r.raw }
