package dynamo_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0"}, {"-0", "0"}, {"0.000", "0"}, {"0e999999999999", "0"}, {"-0.0e-5", "0"},
		{"1", "1"}, {"-1", "-1"}, {"1.50", "1.5"}, {"1e2", "100"}, {"1E+2", "100"}, {"+5", "5"},
		{"00012.3400", "12.34"}, {"2.5E-3", "0.0025"}, {"-12.5e1", "-125"}, {"123.456e-2", "1.23456"},
		{"12345678901234567890123456789012345678", "12345678901234567890123456789012345678"},
		{"1.2345678901234567890123456789012345678e37", "12345678901234567890123456789012345678"},
		{"1e-130", "0." + strings.Repeat("0", 129) + "1"},
		{"9.9999999999999999999999999999999999999E+125", strings.Repeat("9", 38) + strings.Repeat("0", 88)},
		{"1000000000000000000000000000000000000000000", "1000000000000000000000000000000000000000000"},
	} {
		got, err := dynamo.Canonical(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Canonical(%s): got %s, %v, want %s", tc.in, got, err, tc.want)
			continue
		}
		// Same value, checked by an independent parser.
		a, _ := new(big.Rat).SetString(strings.TrimPrefix(tc.in, "+"))
		b, _ := new(big.Rat).SetString(got)
		if a == nil || b == nil || a.Cmp(b) != 0 {
			t.Errorf("Canonical(%s) = %s: not the same value", tc.in, got)
		}
	}
	for _, in := range []string{
		"123456789012345678901234567890123456789", "1.00000000000000000000000000000000000001",
		"1e126", "-1e126", "10e125", "1e-131", "0.1e-130", "1e99999999999999999999",
		"", "-", "abc", "1e", "1.2.3", "0x10", "1e+", "--1", "1 ",
	} {
		if got, err := dynamo.Canonical(in); !errors.Is(err, dynamo.ErrInvalid) {
			t.Errorf("Canonical(%q): got %s, %v, want ErrInvalid", in, got, err)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"0", "1.50", "-1e-130", "9.99e125", "123456789012345678901234567890123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := dynamo.Canonical(s)
		if err != nil {
			return
		}
		if i := strings.IndexAny(s, "eE"); i >= 0 && len(strings.TrimLeft(s[i+1:], "+-0")) > 4 {
			return // big.Rat would compute 10^exponent: 0e999999999 is 0
		}
		want, ok := new(big.Rat).SetString(strings.TrimPrefix(s, "+"))
		if !ok || strings.ContainsAny(s, "/xXpP_ ") {
			return // big.Rat reads forms that are not decimal numbers
		}
		if r, _ := new(big.Rat).SetString(got); r == nil || r.Cmp(want) != 0 {
			t.Fatalf("Canonical(%q) = %q: another value", s, got)
		}
		if again, err := dynamo.Canonical(got); err != nil || again != got {
			t.Fatalf("Canonical(%q) = %q, and again %q, %v", s, got, again, err)
		}
	})
}
