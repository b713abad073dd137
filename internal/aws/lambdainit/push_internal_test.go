package lambdainit

import (
	"strings"
	"testing"
)

func TestPushSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	s, err := pushSettingsFromEnv(env())
	if err != nil || s.quota != 10000 || s.workers != 10 || s.parents != 1 || s.threshold != 100 || s.function != "" {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	if want := 10000.0/11*0.98 - 1; s.rate != want {
		t.Errorf("rate %v, want %v", s.rate, want)
	}
	s, err = pushSettingsFromEnv(env("WSBIND_PUSH_QUOTA", "2500", "WSBIND_PUSH_WORKERS", "4", "WSBIND_FANOUT_CONCURRENCY", "1",
		"WSBIND_PUSH_THRESHOLD", "500", "WSBIND_PUSH_WORKER_FUNCTION", "app-Push"))
	if err != nil || s.quota != 2500 || s.workers != 4 || s.threshold != 500 || s.function != "app-Push" || s.rate != 2500.0/5*0.98-1 {
		t.Fatalf("set: %+v, %v", s, err)
	}
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"WSBIND_PUSH_QUOTA", "fast"}, `WSBIND_PUSH_QUOTA="fast": want the requests per second`},
		{[]string{"WSBIND_PUSH_QUOTA", "-1"}, `WSBIND_PUSH_QUOTA="-1"`},
		{[]string{"WSBIND_PUSH_QUOTA", "NaN"}, `WSBIND_PUSH_QUOTA="NaN"`},
		{[]string{"WSBIND_PUSH_WORKERS", "0"}, `WSBIND_PUSH_WORKERS="0": want the push function's reserved concurrency`},
		{[]string{"WSBIND_FANOUT_CONCURRENCY", "two"}, `WSBIND_FANOUT_CONCURRENCY="two"`},
		{[]string{"WSBIND_PUSH_THRESHOLD", "0"}, `WSBIND_PUSH_THRESHOLD="0"`},
		{[]string{"WSBIND_PUSH_QUOTA", "20", "WSBIND_PUSH_WORKERS", "20"}, "less than 1"},
	} {
		if _, err := pushSettingsFromEnv(env(tc.kv...)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.kv, err, tc.want)
		}
	}
}
