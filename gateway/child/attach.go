package child

import "github.com/agentg/agentg/dissect/mcp"

// Attach puts the guard between a client and p, the way the gateway door
// serves a command server: it returns the session the client's messages
// go into (FromClient), writes what passes to p, and pumps what p writes
// through the session (FromServer) to toClient until p exits; then the
// session is closed with p's end, so every request still waiting gets an
// error. x names who and where (Server: the child's name; Door:
// "gateway"). A new run of the child (Child.Current after a restart)
// needs a new Attach: the server remembers nothing of the last session.
func Attach(g *mcp.Guard, x mcp.Exchange, p *Proc, toClient func([]byte) error) *mcp.Session {
	s := g.NewSession(x, mcp.SessionIO{ToServer: p.Send, ToClient: toClient})
	go func() {
		for l := range p.Recv() {
			if l.Err != nil {
				s.RefuseLine(false, l.Err)
				continue
			}
			s.FromServer(l.Msg)
		}
		s.Close(p.Err())
	}()
	return s
}
