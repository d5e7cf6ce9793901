// Package edgespeed learns travel times per road edge and time-of-day
// bucket from map-matched trails (eta/mapmatch hops) and answers them with
// shrinkage towards coarser evidence where data is thin.
//
// A hop's time (between two matched fixes) is spread over the edges it
// drove in proportion to their free-flow time: each edge gathers observed
// seconds S and the free-flow seconds F they covered, per bucket and all
// day. An edge's ratio (observed ÷ free-flow time) is shrunk towards its
// fallback by Kappa free-flow seconds of weight:
//
//	all day:    r_e  = (S_e  + κ·fallback) / (F_e  + κ)
//	bucket b:   r_eb = (S_eb + κ·r_e)      / (F_eb + κ)
//
// The fallback is the caller's: eta passes the edge's cell ratio (the
// per-cell speeds) when its cell learned one, else this table's global
// ratio for the bucket (Global). So an edge driven often has its own time,
// one driven once leans on its cell, one never driven is the cell's, and a
// cell never seen is the city's.
//
// Hops that stood still (under half a second of free-flow time driven) or
// imply more than 45 m/s are not evidence; a hop's ratio is capped at 20
// (a long wait at one spot does not make the street impassable).
//
// A Table is tied to the graph it was learned on (Signature): edge IDs mean
// nothing on another map. Tables are immutable and safe for concurrent
// use; State is the form eta's model files carry.
//
// edgespeed imports geo/road and eta/mapmatch, and nothing of eta.
package edgespeed
