#!/usr/bin/env python3
"""The cluster's capacity model (docs/SCALING.md): where the first limit is, from measured costs.

    python3 Benchmarks/capacity.py model [--users U] [--nodes N] [activity and machine options]
        the load on each resource for U users on N nodes, and the users at which each one is full
    python3 Benchmarks/capacity.py calibrate SUMMARY.json [SUMMARY.json ...]
        the costs (COSTS below) as runs of Benchmarks/scale.py measured them, as JSON
    python3 Benchmarks/capacity.py check COSTS.json SUMMARY.json
        predicts another scale.py run's figures from costs calibrated on a different one, and
        shows each prediction next to what was measured
    python3 Benchmarks/capacity.py partitioned [--users 10000000] [--nodes 100] [--shards 32] ...
        the partitioned design's load per node and per Redis shard (docs/SCALING.md, part 3)

Standard library only. The full replica's formulas are in one function, `load`, written as
in docs/SCALING.md; the partitioned design's in `partitioned`.
"""
import argparse
import json
import math
import statistics
import sys

# Calibrated with `python3 Benchmarks/capacity.py calibrate` on two scale.py runs, 30 000
# users over three nodes and 50 000 over five (2026-12-06; docs/SCALING.md, part 2), and
# checked against the run of 100 000 over six. Microseconds of one core, bytes.
COSTS = {
    "entries_per_login": 4.0,  # admission, code request, code used, login
    "entries_per_join": 1.0,  # /join (and the room left)
    "apply_us_per_join": 20.6,  # applying a join entry (a member moved, presence decided)
    "presence_delivery_us": 4.68,  # a join or leave notice to one local member
    "redis_us_per_join": 12.2,  # Redis's cost of a join entry, with the readers of the run
    "bench_us_per_join": 221.8,  # chat-bench's cost of a join (the notices it reads)
    "entries_per_logout": 1.0,  # the release
    "apply_us_per_entry": 12.15,  # a node applying one entry it did not originate (the observer)
    "local_login_us": 227.8,  # a node's own work for one of its logins, beyond applying its entries
    "redis_us_per_xadd": 2.2,  # Redis appending one entry, alone (1 / redis-benchmark's XADD ceiling)
    "redis_us_per_entry": 6.24,  # Redis's cost of an entry, its readers apart (appending, replying)
    "redis_us_per_read": 0.21,  # Redis handing one entry to one reading node
    "local_bytes": 5067,  # one local connection on its node
    "remote_dense_bytes": 165,  # one remote member on every other node: in dense storage
    "remote_bytes_per_slot": 263,  # and per slot of its hash tables (see table_slots_per_entry)
    "bench_us_per_login": 188.8,  # chat-bench's own cost per login (only for reproducing this box)
    "box_utilization": 0.973,  # the share of this box's two cores the run kept busy while logging in
    "wall_seconds_per_member": 1.342e-05,  # /wall to everyone on this box: seconds per member reached
    "delivery_us": 6.5,  # one line to one member, at quiet rates (BENCHMARKS.md, run a)
}

HEARTBEAT_SECONDS = 2.0


def load(costs, users, nodes, logins_per_hour, lines_per_hour, joins_per_hour, room_size, node_cores,
         node_memory_gib):
    """Each resource's load, as a fraction of what it has (1.0: full), for `users` on `nodes`.

    Per user per hour: `logins_per_hour` sessions begun (each ends too), `lines_per_hour`
    lines, `joins_per_hour` room changes; a line reaches `room_size` members."""
    c = costs
    joins = users * joins_per_hour / 3600
    per_user = (logins_per_hour * (c["entries_per_login"] + c["entries_per_logout"]) + lines_per_hour) / 3600
    entries = users * per_user + joins * c["entries_per_join"] + nodes / HEARTBEAT_SECONDS  # log entries/s
    deliveries = users * lines_per_hour / 3600 * room_size  # lines to members per second
    # µs/s on each node's one applying thread
    apply = (entries - joins * c["entries_per_join"]) * c["apply_us_per_entry"] + joins * c["apply_us_per_join"]
    local = (users / nodes * logins_per_hour / 3600 * c["local_login_us"]
             + deliveries / nodes * c["delivery_us"]
             + joins * 2 * min(room_size, 500) / nodes * c["presence_delivery_us"])
    redis = entries * (c["redis_us_per_entry"] + nodes * c["redis_us_per_read"])
    memory = users / nodes * c["local_bytes"] + users * (1 - 1 / nodes) * remote_bytes(c, users)
    return {
        "log entries/s": entries,
        "Redis (one thread)": redis / 1e6,
        "a node's applying thread": apply / 1e6,
        "a node's cores (fan-out)": (apply + local) / (node_cores * 1e6),
        "a node's memory": memory / (node_memory_gib * 2**30),
        "_deliveries_per_node": deliveries / nodes,
        "_memory_bytes_per_node": memory,
    }


def first_limits(costs, nodes, users_per_node=None, **activity):
    """For each resource, the users at which it is full (bisection: loads grow with users).
    With `users_per_node`, the cluster grows with its users: ceil(users / users_per_node) nodes."""
    def at(users):
        return load(costs, users, nodes if users_per_node is None else math.ceil(users / users_per_node), **activity)
    result = {}
    for resource in ("Redis (one thread)", "a node's applying thread", "a node's cores (fan-out)", "a node's memory"):
        low, high = 1, 10**9
        if at(high)[resource] < 1:
            result[resource] = math.inf
            continue
        while high - low > max(1, low // 1000):
            middle = (low + high) // 2
            if at(middle)[resource] < 1:
                low = middle
            else:
                high = middle
        result[resource] = low
    return result


def table_slots_per_entry(count):
    """A Swift dictionary of `count` entries has the smallest power of two of slots that keeps
    it at most 3/4 full: slots per entry swing between 4/3 and 8/3 as a chat grows."""
    slots = 1
    while slots * 3 // 4 < count:
        slots *= 2
    return slots / count


def fit_line(points):
    """Least squares `y = a + b x` through (x, y) points; two or more distinct x."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def calibrate(summaries):
    """The costs from scale.py runs. One run gives every cost, with Redis's cost per reader
    and the memory per hash-table slot fixed at this script's defaults; two or more runs
    with different numbers of nodes and users fit those two as well: Redis's cost of an
    entry against its readers, and a remote member's bytes against its tables' slots."""
    runs = [r for summary in summaries for r in json.load(open(summary))]
    ceiling = next(r["redis_ceiling"] for r in runs if "redis_ceiling" in r)
    clusters = [r for r in runs if r.get("layout") == "general" and r["nodes"] > 1]
    general = max(clusters, key=lambda r: r["users"])
    rooms = next((r for r in runs if r.get("layout") == "rooms" and r["nodes"] == general["nodes"]
                  and r["users"] == general["users"]), None)
    nodes = general["nodes"]
    costs = dict(COSTS)
    log = general["log"]
    costs["entries_per_login"] = log["entries_per_login"]
    apply = log["observer_cpu_us_per_entry"]
    costs["apply_us_per_entry"] = apply
    node_cpu = statistics.mean(general["login"]["cpu_us_per_login"]["nodes"])
    costs["local_login_us"] = round(nodes * (node_cpu - log["entries_per_login"] * apply), 1)
    costs["redis_us_per_xadd"] = round(1e6 / ceiling["xadd_per_second"], 2)
    # Redis: an entry appended once and read by every node and the observer.
    readers = [(r["nodes"] + 1, r["log"]["redis_cpu_us_per_entry"]) for r in clusters]
    if len({x for x, _ in readers}) > 1:
        base, per_reader = fit_line(readers)
        costs["redis_us_per_entry"], costs["redis_us_per_read"] = round(base, 2), round(per_reader, 3)
    else:
        costs["redis_us_per_entry"] = round(readers[0][1] - readers[0][0] * costs["redis_us_per_read"], 2)
    # A remote member: bytes in dense storage plus bytes per slot of its hash tables.
    remote = [(table_slots_per_entry(r["users"]), r["rss_bytes_per_remote_member_observer"]) for r in clusters]
    if len({x for x, _ in remote}) > 1:
        dense, per_slot = fit_line(remote)
        costs["remote_dense_bytes"], costs["remote_bytes_per_slot"] = round(dense), round(per_slot)
    else:
        x, y = remote[0]
        costs["remote_dense_bytes"] = round(y - x * costs["remote_bytes_per_slot"])
    remote_here = remote_bytes(costs, general["users"])
    costs["local_bytes"] = round(
        nodes * statistics.median(general["rss_bytes_per_user_per_node"]) - (nodes - 1) * remote_here)
    costs["bench_us_per_login"] = general["login"]["bench_cpu_us_per_login"]
    costs["box_utilization"] = round(general["login"]["logins_per_second"] * box_cpu_per_login(costs, general) / 2e6, 3)
    costs["wall_seconds_per_member"] = general["wall"]["seconds_until_the_last"] / general["wall"]["seen"]
    if rooms:
        costs["entries_per_join"] = round(rooms["log"]["entries_per_login"] - log["entries_per_login"], 2)
        observer = rooms["login"]["cpu_us_per_login"]["observer"] - general["login"]["cpu_us_per_login"]["observer"]
        costs["apply_us_per_join"] = round(observer, 1)
        # A join's notices: "joined" in the new room of `room size` members, spread over the nodes.
        room_size = rooms["users"] / rooms["rooms"]
        extra = (statistics.mean(rooms["login"]["cpu_us_per_login"]["nodes"])
                 - statistics.mean(general["login"]["cpu_us_per_login"]["nodes"]))
        costs["presence_delivery_us"] = round((extra - observer) * nodes / room_size, 2)
        costs["redis_us_per_join"] = round(
            rooms["login"]["cpu_us_per_login"]["redis"] - general["login"]["cpu_us_per_login"]["redis"], 1)
        costs["bench_us_per_join"] = round(
            rooms["login"]["bench_cpu_us_per_login"] - general["login"]["bench_cpu_us_per_login"], 1)
    return costs


def remote_bytes(costs, users):
    return costs["remote_dense_bytes"] + costs["remote_bytes_per_slot"] * table_slots_per_entry(users)


def box_cpu_per_login(costs, run):
    """µs of this box's CPU one login costs in a scale.py run: every node, the observer, Redis
    and the benchmark."""
    nodes = run["nodes"]
    node, observer, redis = per_login(costs, run)
    bench = costs["bench_us_per_login"] + (costs["bench_us_per_join"] if run["layout"] == "rooms" else 0)
    return nodes * node + observer + redis + bench


def per_login(costs, run):
    """µs one login costs a node (on average), the observer and Redis in a scale.py run."""
    nodes = run["nodes"]
    entries = costs["entries_per_login"]
    apply = entries * costs["apply_us_per_entry"]
    node = costs["local_login_us"] / nodes + apply
    redis = entries * (costs["redis_us_per_entry"] + (nodes + 1) * costs["redis_us_per_read"])
    if run["layout"] == "rooms":
        room_size = run["users"] / run["rooms"]
        apply += costs["apply_us_per_join"]
        node += costs["apply_us_per_join"] + room_size / nodes * costs["presence_delivery_us"]
        redis += costs["redis_us_per_join"]
    return node, apply, redis


def check(costs_file, summary):
    costs = json.load(open(costs_file))
    runs = json.load(open(summary))
    rows = []
    for run in (r for r in runs if r.get("nodes", 0) > 1):
        nodes, users, layout = run["nodes"], run["users"], run["layout"]
        node, observer, redis = per_login(costs, run)
        predicted = {
            "node CPU per login, µs (mean of the nodes)": node,
            "observer CPU per login, µs": observer,
            "Redis CPU per login, µs": redis,
            "memory per user per node, bytes (median)":
                costs["local_bytes"] / nodes + (1 - 1 / nodes) * remote_bytes(costs, users),
            "remote member on the observer, bytes": remote_bytes(costs, users),
            "logins per second on this box": costs["box_utilization"] * 2e6 / box_cpu_per_login(costs, run),
            "/wall to everyone, seconds": costs["wall_seconds_per_member"] * users,
        }
        measured = {
            "node CPU per login, µs (mean of the nodes)": statistics.mean(run["login"]["cpu_us_per_login"]["nodes"]),
            "observer CPU per login, µs": run["login"]["cpu_us_per_login"]["observer"],
            "Redis CPU per login, µs": run["login"]["cpu_us_per_login"]["redis"],
            "memory per user per node, bytes (median)": statistics.median(run["rss_bytes_per_user_per_node"]),
            "remote member on the observer, bytes": run["rss_bytes_per_remote_member_observer"],
            "logins per second on this box": run["login"]["logins_per_second"],
            "/wall to everyone, seconds": run["wall"]["seconds_until_the_last"],
        }
        print(f"{users} users, {nodes} nodes, {layout}:")
        for name, value in predicted.items():
            error = (value - measured[name]) / measured[name]
            rows.append(abs(error))
            print(f"  {name:45} predicted {value:10.1f}  measured {measured[name]:10.1f}  ({error:+.0%})")
    print(f"largest error: {max(rows):.0%}")


def partitioned(args):
    """The partitioned design (docs/SCALING.md, part 3): the log split into a global stream
    (names, bans, throttles: every login) and `partitions` room streams spread over `shards`
    Redis primaries; a node reads the global stream and the partitions its users' rooms are in.

    Rooms are placed by hash; a user lands on a node at random, or with probability
    `affinity` on their room's home node (a proxy that routes by room). Reads of one stream
    by many nodes are served by that shard and `read_replicas` replicas of it."""
    c = json.load(open(args.costs)) if args.costs else dict(COSTS)
    if args.delivery_us is not None:
        c["delivery_us"] = args.delivery_us
    users, nodes, shards, partitions = args.users, args.nodes, args.shards, args.partitions
    rooms = max(1, users // args.room_size)
    # Names and bans stay global: a login and a logout per session. The throttles and IP slots
    # a login also writes today become Redis counters, asked by the user's own node only.
    global_entries = users * args.logins_per_hour * args.global_entries_per_session / 3600
    room_entries = users * (args.lines_per_hour + args.joins_per_hour * c["entries_per_join"]) / 3600
    per_partition = room_entries / partitions
    # The chance that a room has a member on a given node other than its home node.
    spread = (1 - args.affinity) / nodes
    touches = 1 - (1 - spread) ** args.room_size
    rooms_home = rooms / nodes
    rooms_touched = rooms_home + (rooms - rooms_home) * touches
    # Partitions hold rooms by hash: a node reads a partition if any of its rooms is there.
    partitions_read = partitions * (1 - (1 - 1 / partitions) ** rooms_touched)
    node_entries = global_entries + partitions_read * per_partition
    # Of a partition's entries, those of rooms with no member here are read and skipped on
    # their room field alone; the rest are applied.
    applied = global_entries + room_entries * rooms_touched / rooms
    skipped = node_entries - applied
    apply_cpu = (applied * c["apply_us_per_entry"] + skipped * args.skip_us_per_entry) / 1e6
    deliveries = users * args.lines_per_hour / 3600 * args.room_size / nodes
    node_cpu = apply_cpu + (users / nodes * args.logins_per_hour / 3600 * c["local_login_us"]
                            + deliveries * c["delivery_us"]) / 1e6
    readers_per_partition = nodes * partitions_read / partitions
    # Redis: each shard appends its partitions' entries and hands each to its readers; the
    # global stream lives on one shard (with its own read replicas).
    # Each copy (the primary, its read replicas) takes every entry; the readers share the copies.
    copies = 1 + args.read_replicas
    shard_room = (per_partition * partitions / shards) * (
        c["redis_us_per_entry"] + readers_per_partition * c["redis_us_per_read"] / copies) / 1e6
    shard_global = global_entries * (c["redis_us_per_entry"] + nodes * c["redis_us_per_read"] / copies) / 1e6
    # A node holds its own connections, the members of the rooms it has someone in, and a
    # name (with its node) for everyone, for uniqueness and private messages.
    members_held = min(users, rooms_touched * args.room_size)
    memory = (users / nodes * c["local_bytes"] + (members_held - users / nodes) * remote_bytes(c, members_held)
              + users * args.name_bytes)
    full_replica = load(c, users, nodes, args.logins_per_hour, args.lines_per_hour, args.joins_per_hour,
                        args.room_size, 1, 64)
    print(json.dumps({
        "users": users, "nodes": nodes, "users_per_node": users // nodes, "rooms": rooms,
        "shards": shards, "partitions": partitions, "affinity": args.affinity,
        "global_entries_per_second": round(global_entries), "room_entries_per_second": round(room_entries),
        "partitions_read_per_node": round(partitions_read, 1),
        "rooms_with_a_member_per_node": round(rooms_touched),
        "entries_read_per_node_per_second": round(node_entries),
        "entries_applied_per_node_per_second": round(applied),
        "node_cores_busy": round(node_cpu, 2),
        "node_applying_thread_busy": round(apply_cpu, 2),
        "node_memory_gib": round(memory / 2**30, 2),
        "redis_room_shard_cores_busy_each": round(shard_room, 2),
        "redis_global_shard_cores_busy": round(shard_global, 2),
        "full_replica_for_comparison": {
            "entries_applied_per_node_per_second": round(full_replica["log entries/s"]),
            "node_applying_thread_busy": round(full_replica["a node's applying thread"], 2),
            "redis_cores_busy": round(full_replica["Redis (one thread)"], 2),
            "node_memory_gib": round(full_replica["_memory_bytes_per_node"] / 2**30, 2),
        },
    }, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def activity(sub, users, nodes):
        sub.add_argument("--users", type=int, default=users)
        sub.add_argument("--nodes", type=int, default=nodes)
        sub.add_argument("--logins-per-hour", type=float, default=1.0, help="sessions begun per user per hour")
        sub.add_argument("--lines-per-hour", type=float, default=10.0, help="lines each user sends per hour")
        sub.add_argument("--joins-per-hour", type=float, default=2.0, help="room changes per user per hour")
        sub.add_argument("--room-size", type=int, default=100, help="members a line reaches")
        sub.add_argument("--costs", help="a JSON file from `calibrate` (default: the costs in this script)")
        sub.add_argument("--delivery-us", type=float,
                         help="CPU per delivery (default 6.5, quiet rates; about 0.5 in a busy room's bursts)")

    model = commands.add_parser("model")
    activity(model, 100_000, 6)
    model.add_argument("--users-per-node", type=int,
                       help="grow the cluster with its users (a node per this many) when finding the limits")
    model.add_argument("--node-cores", type=float, default=2)
    model.add_argument("--node-memory-gib", type=float, default=8)
    sub = commands.add_parser("calibrate")
    sub.add_argument("summaries", nargs="+")
    sub = commands.add_parser("check")
    sub.add_argument("costs")
    sub.add_argument("summary")
    part = commands.add_parser("partitioned")
    activity(part, 10_000_000, 100)
    part.add_argument("--shards", type=int, default=32, help="Redis primaries")
    part.add_argument("--partitions", type=int, default=1024, help="room streams (hash-tagged)")
    part.add_argument("--affinity", type=float, default=0.0,
                      help="share of users placed on their room's home node (0: at random)")
    part.add_argument("--read-replicas", type=int, default=0, help="replicas per shard that serve reads")
    part.add_argument("--global-entries-per-session", type=float, default=2.0,
                      help="entries of the global stream per session (login and logout)")
    part.add_argument("--name-bytes", type=float, default=120.0,
                      help="a name of someone on another node, in the global index (an estimate)")
    part.add_argument("--skip-us-per-entry", type=float, default=1.0,
                      help="a node reading an entry of a room it has nobody in, and skipping it")
    args = parser.parse_args()

    if args.command == "calibrate":
        print(json.dumps(calibrate(args.summaries), indent=2))
    elif args.command == "check":
        check(args.costs, args.summary)
    elif args.command == "partitioned":
        partitioned(args)
    else:
        costs = dict(json.load(open(args.costs)) if args.costs else COSTS)
        if args.delivery_us is not None:
            costs["delivery_us"] = args.delivery_us
        activity = dict(logins_per_hour=args.logins_per_hour, lines_per_hour=args.lines_per_hour,
                        joins_per_hour=args.joins_per_hour, room_size=args.room_size, node_cores=args.node_cores,
                        node_memory_gib=args.node_memory_gib)
        now = load(costs, args.users, args.nodes, **activity)
        print(f"{args.users} users on {args.nodes} nodes: {now['log entries/s']:.0f} log entries/s, "
              f"{now['_deliveries_per_node']:.0f} deliveries/s and "
              f"{now['_memory_bytes_per_node'] / 2**20:.0f} MiB per node")
        for resource, value in now.items():
            if not resource.startswith("_") and resource != "log entries/s":
                print(f"  {resource:28} {value:6.1%} busy")
        limits = first_limits(costs, args.nodes, args.users_per_node, **activity)
        first = min(limits, key=limits.get)
        print("adding a node per " + f"{args.users_per_node:,} users:" if args.users_per_node else
              f"on {args.nodes} nodes:")
        for resource, users in sorted(limits.items(), key=lambda item: item[1]):
            nodes = math.ceil(users / args.users_per_node) if args.users_per_node else args.nodes
            print(f"  full at {users:>14,} users ({nodes} nodes): {resource}"
                  + ("  <- the first limit" if resource == first else ""))


if __name__ == "__main__":
    sys.exit(main())
