namespace Etcd.Server.Tests.Lease;

/// <summary>Timing measurements that must not share the CPU with the rest of this suite: run alone, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialTimingCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "serial timing";
}
