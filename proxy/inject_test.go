package proxy

import "testing"

func TestSetQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", "api_key=v%26x"},
		{"a=1", "a=1&api_key=v%26x"},
		{"api_key=agent", "api_key=v%26x"},
		{"a=1&api_key=agent&b=2&api_key=again", "a=1&b=2&api_key=v%26x"},
		{"api%5Fkey=agent&a", "a&api_key=v%26x"},
		{"&&a=1&", "a=1&api_key=v%26x"},
	}
	for _, tt := range tests {
		if got := setQuery(tt.raw, "api_key", "v&x"); got != tt.want {
			t.Errorf("setQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
