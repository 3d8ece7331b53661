using Etcd.Ctl.Cli;
using Etcd.Utl;
using Etcdserverpb;

namespace Etcd.Ctl.Output;

/// <summary>etcdctl's <c>table</c> format (printer_table.go): member list, endpoint health/status/hashkv and snapshot status only.</summary>
public sealed class TablePrinter : Printer
{
    /// <summary>Creates the printer.</summary>
    public TablePrinter(CtlConsole console)
        : base(console, "table")
    {
    }

#pragma warning disable CS1591 // see Printer
    public override void MemberList(MemberListResponse r) => Print(Tables.MemberList(r));

    public override void EndpointHealth(IReadOnlyList<EndpointHealthResult> r) => Print(Tables.EndpointHealth(r));

    public override void EndpointStatus(IReadOnlyList<EndpointStatusResult> r) => Print(Tables.EndpointStatus(r));

    public override void EndpointHashKV(IReadOnlyList<EndpointHashKVResult> r) => Print(Tables.EndpointHashKV(r));

    public override void DBStatus(SnapshotStatusResult r) => Console.Out(Printers.DbStatus("table", r)!);
#pragma warning restore CS1591

    private void Print((string[] Header, List<string[]> Rows) t) => Console.Out(Printers.Table(t.Header, t.Rows));
}
