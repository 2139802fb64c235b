package netloop_test

import (
	"reflect"
	"testing"

	"github.com/enetkit/enetkit/netloop"
)

// TestSumStats: every counter and size of Stats is summed, ServiceTime is
// the latest; a field added to Stats later is summed without more code.
func TestSumStats(t *testing.T) {
	set := func(v uint64) netloop.Stats {
		var s netloop.Stats
		rv := reflect.ValueOf(&s).Elem()
		for i := range rv.NumField() {
			switch f := rv.Field(i); f.Kind() {
			case reflect.Int:
				f.SetInt(int64(v))
			case reflect.Uint64, reflect.Uint32:
				f.SetUint(v)
			case reflect.Array:
				for j := range f.Len() {
					f.Index(j).SetUint(v)
				}
			}
		}
		return s
	}
	sum := reflect.ValueOf(netloop.SumStats(set(1), set(2)))
	for i := range sum.NumField() {
		name, f := sum.Type().Field(i).Name, sum.Field(i)
		want := uint64(3)
		if name == "ServiceTime" {
			want = 2
		}
		switch f.Kind() {
		case reflect.Int:
			if uint64(f.Int()) != want {
				t.Errorf("%s = %d, want %d", name, f.Int(), want)
			}
		case reflect.Uint64, reflect.Uint32:
			if f.Uint() != want {
				t.Errorf("%s = %d, want %d", name, f.Uint(), want)
			}
		case reflect.Array:
			for j := range f.Len() {
				if f.Index(j).Uint() != want {
					t.Errorf("%s[%d] = %d, want %d", name, j, f.Index(j).Uint(), want)
				}
			}
		}
	}
}
