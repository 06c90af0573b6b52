package app

import (
	"slices"
	"testing"

	"github.com/agentg/agentg/rules"
)

func TestStatsChanges(t *testing.T) {
	base := rules.Stats{HostRules: 3, ToolRules: 2, Lists: []rules.ListStats{{Entries: 10}}}
	tests := []struct {
		name string
		next rules.Stats
		want []string
	}{
		{"same counts", base, nil},
		{"rules added", rules.Stats{HostRules: 4, ToolRules: 2, Lists: []rules.ListStats{{Entries: 10}}}, []string{"host patterns 3→4"}},
		{"list grew, tools removed", rules.Stats{HostRules: 3, ToolRules: 0, Lists: []rules.ListStats{{Entries: 12}}},
			[]string{"list entries 10→12", "tool patterns 2→0"}},
		{"intercept all", rules.Stats{HostRules: 3, ToolRules: 2, Lists: []rules.ListStats{{Entries: 10}}, InterceptAll: true}, []string{"intercept all false→true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statsChanges(base, tt.next); !slices.Equal(got, tt.want) {
				t.Errorf("statsChanges = %q, want %q", got, tt.want)
			}
		})
	}
}
