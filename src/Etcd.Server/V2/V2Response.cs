using Etcd.Storage.V2Store;

namespace Etcd.Server.V2;

/// <summary>
/// The answer to a v2 keys request (etcd's <c>etcdserver.Response</c>): an event, or for <c>wait=true</c> a watcher,
/// with the raft term and committed index when it was served (<c>X-Raft-Term</c>, <c>X-Raft-Index</c>).
/// </summary>
public sealed record V2Response(V2Event? Event, V2Watcher? Watcher, ulong Index, ulong Term);
