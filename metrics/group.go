package metrics

import (
	"strconv"

	"github.com/enetkit/enetkit/netloop"
)

// AddGroup starts collecting the figures of each host of g (see
// netloop.Group), labelled host=name/0, name/1, ... in the order of
// g.Hosts(); sum them in the query (sum without (host)) for the group's.
func (m *Metrics) AddGroup(name string, g *netloop.Group) {
	for i, h := range g.Hosts() {
		m.AddHost(groupHost(name, i), h)
	}
}

// RemoveGroup stops collecting the hosts of the group called name, which
// had n hosts.
func (m *Metrics) RemoveGroup(name string, n int) {
	for i := range n {
		m.RemoveHost(groupHost(name, i))
	}
}

func groupHost(name string, i int) string { return name + "/" + strconv.Itoa(i) }
