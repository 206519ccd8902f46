package goredis

// MaxInFlight is maxInFlight, for the tests of package goredis_test.
const MaxInFlight = maxInFlight
