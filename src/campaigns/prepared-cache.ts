/**
 * Per-campaign preparation (template compiled, header skeleton built) done
 * once and shared by every recipient's render. Concurrent renders of a new
 * campaign wait for the same preparation; a failed one is not kept, so the
 * next render tries again; the oldest of more than `limit` campaigns is dropped.
 */
export function preparedPerCampaign<T>(prepare: (campaignId: string) => Promise<T>, limit = 64): (campaignId: string) => Promise<T> {
  const cache = new Map<string, Promise<T>>();
  return (campaignId) => {
    let entry = cache.get(campaignId);
    if (!entry) {
      entry = prepare(campaignId);
      entry.catch(() => cache.delete(campaignId));
      cache.set(campaignId, entry);
      if (cache.size > limit) cache.delete(cache.keys().next().value!);
    }
    return entry;
  };
}
