package creds

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A KMS key is a secret by name (so listing secrets shows it) whose URI's
// PIN is never printed and which has no value to send.
func TestKMSSource(t *testing.T) {
	src := KMS("softkms:path=/k.pem;pin-value=hunter2")
	js, _ := json.Marshal(src)
	for _, got := range []string{src.String(), fmt.Sprintf("%v %+v %#v", src, src, src)} {
		if strings.Contains(got, "hunter2") || !strings.Contains(got, "kms softkms:path=/k.pem;pin-value=REDACTED") {
			t.Errorf("printed %q", got)
		}
	}
	if strings.Contains(string(js), "hunter2") {
		t.Errorf("JSON shows the PIN: %s", js)
	}
	_, err := NewStore(map[string]Source{"k": src}).Get(context.Background(), "k")
	if err == nil || !strings.Contains(err.Error(), "no value to send") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Get of a KMS key: %v", err)
	}
}
