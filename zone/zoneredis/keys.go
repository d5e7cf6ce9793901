package zoneredis

// Keys. The zones and the per-zone sets share the hash tag {zones}; a
// driver's state shares its driver id's tag with its event topic.
func (s *Store) zonesKey() string             { return s.cfg.Prefix + "zones:{zones}" }
func (s *Store) versionKey() string           { return s.cfg.Prefix + "zones:{zones}:version" }
func (s *Store) insideKey(zone string) string { return s.cfg.Prefix + "zones:{zones}:in:" + zone }
func (s *Store) activeKey() string            { return s.cfg.Prefix + "zones:{zones}:active" }
func (s *Store) stateKey(driverID string) string {
	return s.cfg.Prefix + "zonestate:{" + driverID + "}"
}

// DriverTopic is the feed topic of a driver's zone events.
func DriverTopic(driverID string) string { return "driverzones:" + driverID }
