package compare

// This file: exact number comparison from the text, and tolerance in exact
// decimal arithmetic.

import (
	"bytes"
	"math/big"
	"strconv"
)

// decimal is a JSON number as sign, significant digits and exponent, so that
// 1, 1.0, 1e0 and 10e-1 have the same form and numbers of any size compare
// exactly without float64 rounding: value = 0.D × 10^exp, where D (the digits
// of a then b) has no leading or trailing zeros. Zero has no digits.
//
// Exponents are kept as int64 unless the text's exponent does not fit; then
// bigExp holds it, sized by the text (1e1000000000 needs no big number at
// all, and no exponent ever becomes a number with that many digits).
type decimal struct {
	neg    bool
	a, b   []byte
	exp    int64
	bigExp *big.Int
}

func (d *decimal) zero() bool { return len(d.a)+len(d.b) == 0 }

// FloatExact reports whether a JSON number has at most 15 significant
// digits and lies within float64's normal range. Such numbers map to
// distinct float64 values in their order, so a JSONPath filter, which
// compares numbers as float64, compares them exactly; 9007199254740993
// and 9007199254740992 would be one float64.
func FloatExact(num []byte) bool {
	d := parseDecimal(num)
	switch {
	case d.bigExp != nil:
		return false
	case d.zero():
		return true
	}
	return d.digits() <= 15 && d.exp >= -306 && d.exp <= 308
}

// bigNumber is a number a filter could not compare exactly (FloatExact):
// filters get it as this type, in its canonical form, which JSONPath
// compares with no number, so no filter selects it by comparing it with a
// number (!= does); another bigNumber of the same value is equal to it.
// Rename's rewriting gets it as written.
type bigNumber string

func (d *decimal) digits() int { return len(d.a) + len(d.b) }

func (d *decimal) digit(i int) byte {
	if i < len(d.a) {
		return d.a[i]
	}
	return d.b[i-len(d.a)]
}

// parseDecimal splits a number that passed the grammar check.
func parseDecimal(s []byte) decimal {
	var d decimal
	if len(s) > 0 && s[0] == '-' {
		d.neg, s = true, s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intd, rest := s[:i], s[i:]
	var frac []byte
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac, rest = rest[1:j], rest[j:]
	}
	var x int64
	var bigX *big.Int
	if len(rest) > 0 { // e or E
		e := rest[1:]
		negX := false
		if e[0] == '+' || e[0] == '-' {
			negX, e = e[0] == '-', e[1:]
		}
		e = bytes.TrimLeft(e, "0")
		if len(e) <= 17 {
			for _, c := range e {
				x = x*10 + int64(c-'0')
			}
			if negX {
				x = -x
			}
		} else {
			bigX, _ = new(big.Int).SetString(string(e), 10)
			if negX {
				bigX.Neg(bigX)
			}
		}
	}
	intd = bytes.TrimLeft(intd, "0")
	var shift int64
	if len(intd) > 0 {
		d.a, d.b, shift = intd, frac, int64(len(intd))
	} else {
		z := len(frac) - len(bytes.TrimLeft(frac, "0"))
		d.a, shift = frac[z:], -int64(z)
	}
	if len(d.b) > 0 {
		d.b = bytes.TrimRight(d.b, "0")
	}
	if len(d.b) == 0 {
		d.a = bytes.TrimRight(d.a, "0")
	}
	if d.zero() {
		return decimal{}
	}
	if bigX != nil {
		d.bigExp = bigX.Add(bigX, big.NewInt(shift))
	} else {
		d.exp = x + shift
	}
	return d
}

func (d *decimal) sameExp(e *decimal) bool {
	if d.bigExp == nil && e.bigExp == nil {
		return d.exp == e.exp
	}
	return d.bigExponent().Cmp(e.bigExponent()) == 0
}

func (d *decimal) bigExponent() *big.Int {
	if d.bigExp != nil {
		return d.bigExp
	}
	return big.NewInt(d.exp)
}

// equal reports whether two decimals are the same number (-0 is 0).
func (d *decimal) equal(e *decimal) bool {
	if d.zero() || e.zero() {
		return d.zero() && e.zero()
	}
	if d.neg != e.neg || d.digits() != e.digits() || !d.sameExp(e) {
		return false
	}
	if len(d.a) == len(e.a) {
		return bytes.Equal(d.a, e.a) && bytes.Equal(d.b, e.b)
	}
	for i := range d.digits() {
		if d.digit(i) != e.digit(i) {
			return false
		}
	}
	return true
}

// numberEqual reports whether two JSON number texts are the same number.
func numberEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	da, db := parseDecimal(a), parseDecimal(b)
	return da.equal(&db)
}

// appendCanonical appends a form that is equal for equal numbers and
// different for different ones: 0, or [-]DIGITSeEXP.
func (d *decimal) appendCanonical(dst []byte) []byte {
	if d.zero() {
		return append(dst, '0')
	}
	if d.neg {
		dst = append(dst, '-')
	}
	dst = append(dst, d.a...)
	dst = append(dst, d.b...)
	dst = append(dst, 'e')
	if d.bigExp != nil {
		return d.bigExp.Append(dst, 10)
	}
	return strconv.AppendInt(dst, d.exp, 10)
}

// isNumber reports whether s is exactly a JSON number.
func isNumber(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	p := parser{s: s}
	return p.number(0) == len(s) && p.err == nil
}

// maxToleranceShift bounds the powers of ten that tolerance arithmetic may
// scale by: numbers further apart in magnitude than this (or beyond 1e±4000)
// are compared exactly, so no input can make the comparison build a huge
// integer.
const maxToleranceShift = 4000

// scaled is D × 10^low, D an integer.
type scaled struct {
	d   *big.Int
	low int64
}

func (d *decimal) scaled() (scaled, bool) {
	if d.bigExp != nil || d.exp > maxToleranceShift || d.exp < -maxToleranceShift || d.digits() > maxToleranceShift {
		return scaled{}, false
	}
	n := new(big.Int)
	if !d.zero() {
		n.SetString(string(d.a)+string(d.b), 10)
		if d.neg {
			n.Neg(n)
		}
	}
	return scaled{n, d.exp - int64(d.digits())}, true
}

// at returns s's integer at the finer scale low (low <= s.low).
func (s scaled) at(low int64) *big.Int {
	if s.low == low {
		return new(big.Int).Set(s.d)
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(s.low-low), nil)
	return p.Mul(p, s.d)
}

// within reports whether |a-b| <= abs or |a-b| <= rel × max(|a|,|b|),
// computed exactly in decimal; a nil bound is not checked.
func within(a, b, abs, rel *decimal) bool {
	if a.equal(b) {
		return true
	}
	sa, ok1 := a.scaled()
	sb, ok2 := b.scaled()
	if !ok1 || !ok2 || !fits(sa, sb) {
		return false
	}
	low := min(sa.low, sb.low)
	diff := sa.at(low)
	diff.Sub(diff, sb.at(low)).Abs(diff)
	gap := scaled{diff, low}
	if abs != nil && !abs.zero() {
		if t, ok := abs.scaled(); ok && fits(gap, t) && cmpScaled(gap, t) <= 0 {
			return true
		}
	}
	if rel != nil && !rel.zero() {
		r, ok := rel.scaled()
		if !ok {
			return false
		}
		m := sa
		if cmpAbs(sb, sa) > 0 {
			m = sb
		}
		bound := scaled{new(big.Int).Mul(new(big.Int).Abs(m.d), r.d), m.low + r.low}
		if fits(gap, bound) && cmpScaled(gap, bound) <= 0 {
			return true
		}
	}
	return false
}

func fits(a, b scaled) bool {
	d := a.low - b.low
	return d <= maxToleranceShift && d >= -maxToleranceShift
}

func cmpScaled(a, b scaled) int {
	low := min(a.low, b.low)
	return a.at(low).Cmp(b.at(low))
}

func cmpAbs(a, b scaled) int {
	low := min(a.low, b.low)
	x, y := a.at(low), b.at(low)
	return x.Abs(x).Cmp(y.Abs(y))
}
