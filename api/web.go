package api

// webRoutes serves the web pages (/, /ops, /driver) and their assets. The
// web engineer owns this file.
func (s *Server) webRoutes() {}
