import { describe, expect, it } from "vitest";
import { everyBucket } from "./TrafficPanel";

const NOW = Date.parse("2026-11-26T18:20:00Z");

describe("the traffic chart's buckets", () => {
  it("shows every hour of the last 24, quiet ones as zero, the API's counts where it has them", () => {
    const buckets = everyBucket([{ t: "2026-11-26T15:00:00Z", requests: 9, by_status: { "2xx": 6, "4xx": 3 } }], "24h", NOW);
    expect(buckets).toHaveLength(24);
    expect(buckets[0].t).toBe("2026-11-25T19:00:00.000Z");
    expect(buckets[23].t).toBe("2026-11-26T18:00:00.000Z");
    expect(buckets.filter((b) => b.requests > 0)).toEqual([{ t: "2026-11-26T15:00:00Z", requests: 9, by_status: { "2xx": 6, "4xx": 3 } }]);
  });

  it("uses minutes for the last hour and days for the last 30 days", () => {
    expect(everyBucket([], "1h", NOW)).toHaveLength(60);
    const days = everyBucket([], "30d", NOW);
    expect(days).toHaveLength(30);
    expect(days[29].t).toBe("2026-11-26T00:00:00.000Z");
  });
});
