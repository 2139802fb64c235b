package metrics

import "testing"

// Every metric has a definition of its own: a name, once.
func TestDefs(t *testing.T) {
	seen := make(map[string]metric)
	for i, def := range defs {
		if def.name == "" || def.help == "" {
			t.Errorf("metric %d has no definition", i)
		}
		if j, ok := seen[def.name]; ok {
			t.Errorf("metrics %d and %d are both %q", j, i, def.name)
		}
		seen[def.name] = metric(i)
	}
}
