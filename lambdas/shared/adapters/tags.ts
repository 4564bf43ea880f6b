/**
 * Tags for the whole account from the Resource Groups Tagging API: one paginated GetResources query per tag key we
 * read (the exclusion tag and the owner tag), not one ListTags call per function.
 *
 * GetResources with `TagFilters: [{ Key }]` (no Values) returns every resource that has the key with any value; two
 * filters in one request would AND them, hence one query per key. `ResourceTypeFilters: ['lambda:function']`
 * keeps it to functions; `ResourcesPerPage` is at most 100; `PaginationToken` is empty on the last page
 * (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html).
 *
 * Only the requested keys are kept. A failed query (after the SDK's retries) throws: without the exclusion tag no
 * function may be touched, so the run stops before anything is assessed.
 */
import { paginateGetResources } from '@aws-sdk/client-resource-groups-tagging-api';
import { tagging } from './clients';
import { ownInput } from './paging';

export const RESOURCES_PER_PAGE = 100;

/** Tags by function ARN, restricted to `keys`. */
export async function functionTags(keys: readonly string[]): Promise<Map<string, Record<string, string>>> {
  const byArn = new Map<string, Record<string, string>>();
  const wanted = new Set(keys);
  for (const key of wanted) {
    const pages = paginateGetResources(
      { client: tagging, pageSize: RESOURCES_PER_PAGE, withCommand: ownInput },
      { TagFilters: [{ Key: key }], ResourceTypeFilters: ['lambda:function'] },
    );
    for await (const page of pages) {
      for (const resource of page.ResourceTagMappingList ?? []) {
        if (resource.ResourceARN === undefined) continue;
        const tags = byArn.get(resource.ResourceARN) ?? {};
        for (const tag of resource.Tags ?? []) {
          if (tag.Key !== undefined && wanted.has(tag.Key) && tag.Value !== undefined) tags[tag.Key] = tag.Value;
        }
        byArn.set(resource.ResourceARN, tags);
      }
    }
  }
  return byArn;
}
