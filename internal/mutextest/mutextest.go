// Package mutextest is the behaviour suite of the root package, written
// once and run against every adapter: each adapter's tests call Run with a
// constructor for its Pool. The suite starts its own redis-server processes
// through internal/redistest (it skips, or fails with
// REDSYNC_REQUIRE_REDIS=1, when redis-server is missing).
package mutextest

import (
	"testing"

	"github.com/quorumlock/redsync/redis"
)

// Adapter is a client library under test.
type Adapter struct {
	// Name names the adapter in subtest names.
	Name string
	// NewPool returns a Pool for the server at addr, built the way a user
	// would build it (the client's default options), closed in t.Cleanup.
	NewPool func(t *testing.T, addr string) redis.Pool
}

// Run runs the whole behaviour suite against adapters on 1, 3 and 5 real
// servers, pausing and killing servers where a test needs it.
func Run(t *testing.T, adapters ...Adapter) {
	tests := []struct {
		name string
		fn   func(*testing.T, []Adapter)
	}{
		{"LockStoresRedsyncKeyAndValueOnEveryServer", testLockStoresRedsyncKeyAndValueOnEveryServer},
		{"MutualExclusionAmongManyGoroutines", testMutualExclusionAmongManyGoroutines},
		{"TryLockOnHeldLockReportsTakenOnEveryNode", testTryLockOnHeldLockReportsTakenOnEveryNode},
		{"LockGivesUpAfterItsTries", testLockGivesUpAfterItsTries},
		{"ForeignValuesOnSomeServers", testForeignValuesOnSomeServers},
		{"UnlockAfterExpiryReportsExpired", testUnlockAfterExpiryReportsExpired},
		{"ExtendResetsTheExpiry", testExtendResetsTheExpiry},
		{"SetNXOnExtendRestoresKeysLostByServers", testSetNXOnExtendRestoresKeysLostByServers},
		{"ScriptsSurviveScriptFlush", testScriptsSurviveScriptFlush},
		{"ValidFollowsTheKeys", testValidFollowsTheKeys},
		{"WithValueTransfersOwnership", testWithValueTransfersOwnership},
		{"GenValueFuncIsCalledPerTry", testGenValueFuncIsCalledPerTry},
		{"ShuffleAndFailFastKeepTheResults", testShuffleAndFailFastKeepTheResults},
		{"LockContextCancelledReturnsPromptlyAndLeavesNothing", testLockContextCancelledReturnsPromptlyAndLeavesNothing},
		{"QuorumSurvivesKilledMinority", testQuorumSurvivesKilledMinority},
		{"PausedMinorityCostsNothing", testPausedMinorityCostsNothing},
		{"PausedMajorityFailsAndLeavesNothing", testPausedMajorityFailsAndLeavesNothing},
		{"UntilAndValueMayBeReadWhileAnotherGoroutineExtends", testUntilAndValueMayBeReadWhileAnotherGoroutineExtends},
		{"OneStalledServerOfFiveCostsNothing", testOneStalledServerOfFiveCostsNothing},
		{"CancelWithReachableQuorumAcquiresAtOnce", testCancelWithReachableQuorumAcquiresAtOnce},
		{"UnlockAndExtendAreBoundedByTheDeadline", testUnlockAndExtendAreBoundedByTheDeadline},
		{"FailFastLeavesNoOrphans", testFailFastLeavesNoOrphans},
		{"LateAcquireAfterCancelIsReleased", testLateAcquireAfterCancelIsReleased},
		{"FailFastOnlyChangesHowSoonAFailureReturns", testFailFastOnlyChangesHowSoonAFailureReturns},
		{"WaiterWakesWhenTheLockIsReleased", testWaiterWakesWhenTheLockIsReleased},
		{"WaiterWakesWhenTheKeyExpires", testWaiterWakesWhenTheKeyExpires},
		{"WaitersOfOneProcessShareOneConnectionPerServer", testWaitersOfOneProcessShareOneConnectionPerServer},
		{"ReleaserDoesNotJumpTheQueue", testReleaserDoesNotJumpTheQueue},
		{"ListenerReconnectsAfterRestart", testListenerReconnectsAfterRestart},
		{"WaitReturnsWhileAListenersServerIsStalled", testWaitReturnsWhileAListenersServerIsStalled},
		{"HandoffOffPollsLikeRedsync", testHandoffOffPollsLikeRedsync},
		{"KeepAliveHoldsALockForManyExpiries", testKeepAliveHoldsALockForManyExpiries},
		{"KeepAliveStopsForGoodAtUnlock", testKeepAliveStopsForGoodAtUnlock},
		{"KeepAliveReportsALostQuorumBeforeUntil", testKeepAliveReportsALostQuorumBeforeUntil},
		{"KeepAliveReportsAnotherHolder", testKeepAliveReportsAnotherHolder},
		{"KeepAliveRestoresTheKeyOnARestartedServer", testKeepAliveRestoresTheKeyOnARestartedServer},
		{"KeepAliveFollowsTheCallersContext", testKeepAliveFollowsTheCallersContext},
		{"RunLockedAlwaysReleases", testRunLockedAlwaysReleases},
		{"FencingTokensGrowInHoldOrder", testFencingTokensGrowInHoldOrder},
		{"FencingKeepsRedsyncKeyAndExcludesPlainMutexes", testFencingKeepsRedsyncKeyAndExcludesPlainMutexes},
		{"FencingTokensGrowAcrossServersRestartedEmpty", testFencingTokensGrowAcrossServersRestartedEmpty},
		{"FencingOrdersHoldersOfDifferentQuorums", testFencingOrdersHoldersOfDifferentQuorums},
		{"FencingTokenOfAMutex", testFencingTokenOfAMutex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, adapters) })
	}
}
