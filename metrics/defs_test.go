package metrics

import "testing"

// Every metric has a definition of its own: a name, once.
func TestDefs(t *testing.T) {
	seen := make(map[string]bool)
	check := func(set string, i int, def metricDef) {
		if def.name == "" || def.help == "" {
			t.Errorf("%s metric %d has no definition", set, i)
		}
		if seen[def.name] {
			t.Errorf("%s metric %d: %q is defined twice", set, i, def.name)
		}
		seen[def.name] = true
	}
	for i, def := range defs {
		check("host", i, def)
	}
	for i, def := range clusterDefs {
		check("cluster", i, def)
	}
}
