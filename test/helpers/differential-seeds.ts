// The seeds the differential test runs in CI (test/e2e/differential.test.ts); the
// generator's unit test checks that together they use every feature.
export const ciSeeds = [1, 2, 3, 4, 5, 10, 11];
