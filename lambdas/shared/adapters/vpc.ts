/**
 * VPC egress of a function's subnets, from EC2 DescribeRouteTables.
 *
 * A function in a VPC reaches the internet (and so the Prisma Cloud console) only through NAT: its network
 * interfaces never get public IP addresses, so a route to an internet gateway does not help
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html).
 *
 * Decision per subnet, from the `0.0.0.0/0` routes of its route table that are not `blackhole`:
 * - `nat`: a route to a NAT gateway (`NatGatewayId`) or to an EC2 instance (`InstanceId`: a NAT instance; AWS fills
 *   InstanceId for a route to an instance or to an interface attached to one);
 * - `unknown`: a route that may lead to a NAT elsewhere and that we cannot follow from here (transit gateway, VPC
 *   peering, a bare network interface, a gateway/firewall endpoint `vpce-`, Cloud WAN core network, local or
 *   carrier gateway): a person must verify it;
 * - `none`: no default route, or only to an internet gateway / egress-only gateway / virtual private gateway.
 * A function's egress is `nat` when every subnet is `nat`, `unknown` when any subnet is unknown, else `none`.
 *
 * A subnet without an explicit association uses its VPC's main route table: "If a subnet is not explicitly
 * associated with any route table, it is implicitly associated with the main route table. This command does not
 * return the subnet ID for implicit associations." So explicit associations are read with the filter
 * `association.subnet-id`, then main tables with `vpc-id` + `association.main=true`
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRouteTables.html).
 *
 * Results are cached per subnet (and main table per VPC) in the container for the current run only. A failed
 * lookup is not cached and leaves the function's egress unread (`undefined`): the fact is missing, so the funnel
 * skips with FACTS_MISSING (issue 3: a read that fails is never taken for a default).
 * A subnet whose route table cannot be found at all (no explicit association, no main table) is `unknown`.
 */
import { paginateDescribeRouteTables, type Filter, type RouteTable } from '@aws-sdk/client-ec2';
import type { VpcEgress } from '../domain/types';
import { ec2 } from './clients';
import { ownInput } from './paging';

/** EC2 filter values per request we send (well under the API's limits). */
export const SUBNETS_PER_CALL = 100;
export const ROUTE_TABLES_PAGE_SIZE = 100;

const UNFOLLOWABLE_GATEWAY = /^(vpce-|cagw-|lgw-)/;

/** The egress a route table gives the subnets that use it. */
export function routeTableEgress(table: RouteTable): VpcEgress {
  const defaults = (table.Routes ?? []).filter(
    (route) => route.DestinationCidrBlock === '0.0.0.0/0' && route.State !== 'blackhole',
  );
  if (defaults.some((r) => r.NatGatewayId !== undefined || r.InstanceId !== undefined)) return 'nat';
  const unfollowable = defaults.some(
    (r) =>
      r.TransitGatewayId !== undefined ||
      r.VpcPeeringConnectionId !== undefined ||
      r.NetworkInterfaceId !== undefined ||
      r.CoreNetworkArn !== undefined ||
      r.LocalGatewayId !== undefined ||
      r.CarrierGatewayId !== undefined ||
      (r.GatewayId !== undefined && UNFOLLOWABLE_GATEWAY.test(r.GatewayId)),
  );
  return unfollowable ? 'unknown' : 'none';
}

/** A function's egress from its subnets' egress. */
export function combineEgress(subnets: readonly VpcEgress[]): VpcEgress {
  if (subnets.length === 0) return 'unknown';
  if (subnets.every((e) => e === 'nat')) return 'nat';
  return subnets.includes('unknown') ? 'unknown' : 'none';
}

interface RunCache {
  runId: string;
  subnets: Map<string, VpcEgress>;
  mainTables: Map<string, VpcEgress>;
  calls: number;
}

let cache: RunCache = { runId: '', subnets: new Map(), mainTables: new Map(), calls: 0 };

function cacheFor(runId: string): RunCache {
  if (cache.runId !== runId) cache = { runId, subnets: new Map(), mainTables: new Map(), calls: 0 };
  return cache;
}

/** DescribeRouteTables calls made in the current run by this container (for tests and logs). */
export function routeTableCalls(): number {
  return cache.calls;
}

async function describeAll(run: RunCache, filters: Filter[]): Promise<RouteTable[]> {
  const tables: RouteTable[] = [];
  // Each page is counted as it is sent (a failed call counts too).
  const count = <C extends { input: object }>(command: C): C => {
    run.calls += 1;
    return ownInput(command);
  };
  const pages = paginateDescribeRouteTables(
    { client: ec2, pageSize: ROUTE_TABLES_PAGE_SIZE, withCommand: count },
    { Filters: filters },
  );
  for await (const page of pages) tables.push(...(page.RouteTables ?? []));
  return tables;
}

export interface VpcFunction {
  subnetIds: readonly string[];
  vpcId?: string;
}

/**
 * Looks up (or takes from the run's cache) every subnet of the given functions, in as few calls as possible.
 * @returns a function that gives one function's egress. Never throws.
 */
export async function resolveEgress(
  runId: string,
  functions: readonly VpcFunction[],
): Promise<(fn: VpcFunction) => VpcEgress | undefined> {
  const run = cacheFor(runId);
  const vpcOfSubnet = new Map<string, string | undefined>();
  for (const fn of functions) for (const subnet of fn.subnetIds) vpcOfSubnet.set(subnet, fn.vpcId);
  const pending = [...vpcOfSubnet.keys()].filter((subnet) => !run.subnets.has(subnet));
  const failed = new Set<string>();
  const failedVpcs = new Set<string>();

  const implicit: string[] = [];
  for (let i = 0; i < pending.length; i += SUBNETS_PER_CALL) {
    const chunk = pending.slice(i, i + SUBNETS_PER_CALL);
    try {
      const tables = await describeAll(run, [{ Name: 'association.subnet-id', Values: chunk }]);
      const explicit = new Map<string, VpcEgress>();
      for (const table of tables) {
        const egress = routeTableEgress(table);
        for (const association of table.Associations ?? []) {
          if (association.SubnetId !== undefined) explicit.set(association.SubnetId, egress);
        }
      }
      for (const subnet of chunk) {
        const egress = explicit.get(subnet);
        if (egress !== undefined) run.subnets.set(subnet, egress);
        else implicit.push(subnet);
      }
    } catch {
      for (const subnet of chunk) failed.add(subnet);
    }
  }

  const vpcs = [
    ...new Set(
      implicit.flatMap((s) => {
        const vpc = vpcOfSubnet.get(s);
        return vpc !== undefined && !run.mainTables.has(vpc) ? [vpc] : [];
      }),
    ),
  ];
  for (let i = 0; i < vpcs.length; i += SUBNETS_PER_CALL) {
    const chunk = vpcs.slice(i, i + SUBNETS_PER_CALL);
    try {
      const tables = await describeAll(run, [
        { Name: 'vpc-id', Values: chunk },
        { Name: 'association.main', Values: ['true'] },
      ]);
      for (const table of tables) {
        const isMain = (table.Associations ?? []).some((a) => a.Main === true);
        if (table.VpcId !== undefined && isMain) run.mainTables.set(table.VpcId, routeTableEgress(table));
      }
    } catch {
      for (const vpc of chunk) failedVpcs.add(vpc);
    }
  }
  for (const subnet of implicit) {
    const vpc = vpcOfSubnet.get(subnet);
    const main = vpc !== undefined ? run.mainTables.get(vpc) : undefined;
    if (main !== undefined) run.subnets.set(subnet, main);
    else if (vpc !== undefined && failedVpcs.has(vpc)) failed.add(subnet);
    // else: unknown VPC or no main table found: stays uncached, so `unknown` below
  }

  return (fn: VpcFunction) =>
    fn.subnetIds.some((subnet) => failed.has(subnet))
      ? undefined
      : combineEgress(fn.subnetIds.map((subnet) => run.subnets.get(subnet) ?? 'unknown'));
}
