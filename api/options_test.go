package api_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
)

// TestWithDefaultsRefusesWhatCannotWork: values that cannot work are
// refused with an error that says what would.
func TestWithDefaultsRefusesWhatCannotWork(t *testing.T) {
	for _, tt := range []struct {
		name    string
		o       api.Options
		want    string
		notWant string
	}{
		{"negative pong timeout", api.Options{PongTimeout: -time.Second}, "PongTimeout -1s is negative", "api.Disabled"},
		{"negative close timeout", api.Options{CloseTimeout: -time.Second}, "CloseTimeout -1s is negative", "api.Disabled"},
		{"negative write timeout", api.Options{WriteTimeout: -time.Second}, "use api.Disabled", ""},
		{"origin pattern with a scheme", api.Options{OriginPatterns: []string{"https://app.example.com"}}, "not a URL", ""},
		{"bad origin pattern", api.Options{OriginPatterns: []string{"["}}, "syntax error in pattern", ""},
		{"TLS without a certificate", api.Options{TLSConfig: &tls.Config{}}, "no certificate", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.o.WithDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.notWant != "" && strings.Contains(err.Error(), tt.notWant)) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := (api.Options{OriginPatterns: []string{"*.example.com", "localhost:8080"}}).WithDefaults(); err != nil {
		t.Fatalf("host patterns refused: %v", err)
	}
}
