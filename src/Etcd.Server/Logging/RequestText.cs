using System.Collections;
using System.Globalization;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Etcd.Server.Logging;

/// <summary>
/// Requests as etcd 3.4 prints them in its slow-request warnings: Go protobuf's compact text format
/// (<c>proto.CompactTextString</c>: <c>name:value </c> per set field in declaration order, nested messages as
/// <c>name:&lt;...&gt; </c>, enums by name, bytes and strings quoted with Go's escapes), and etcd's redacting
/// stringers that replace values with their sizes (<c>InternalRaftStringer</c>, <c>NewLoggableTxnRequest</c>,
/// <c>NewLoggablePutRequest</c> in <c>etcdserverpb/raft_internal_stringer.go</c>). Pure and thread-safe.
/// </summary>
public static class RequestText
{
    /// <summary>Go's <c>proto.CompactTextString(message)</c>, e.g. <c>key:"foo" range_end:"fop" </c>.</summary>
    public static string Compact(IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var sb = new StringBuilder();
        WriteFields(sb, message);
        return sb.ToString();
    }

    /// <summary>etcd's <c>InternalRaftStringer</c>: the request with put values and compare values replaced by sizes.</summary>
    public static string InternalRaft(InternalRaftRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Header is null ? "<nil>" : Compact(request.Header);
        if (request.LeaseGrant is { } grant)
        {
            return string.Create(CultureInfo.InvariantCulture, $"header:<{header}> lease_grant:<ttl:{grant.TTL}-second id:{grant.ID:x16}>");
        }

        if (request.LeaseRevoke is { } revoke)
        {
            return string.Create(CultureInfo.InvariantCulture, $"header:<{header}> lease_revoke:<id:{revoke.ID:x16}>");
        }

        if (request.Authenticate is { } auth)
        {
            return $"header:<{header}> authenticate:<name:{auth.Name} simple_token:{auth.SimpleToken}>";
        }

        if (request.AuthUserAdd is { } add)
        {
            return $"header:<{header}> auth_user_add:<name:{add.Name}>";
        }

        if (request.AuthUserChangePassword is { } change)
        {
            return $"header:<{header}> auth_user_change_password:<name:{change.Name}>";
        }

        if (request.Put is { } put)
        {
            return $"header:<{header}> put:<{Put(put)}>";
        }

        if (request.Txn is { } txn)
        {
            return $"header:<{header}> txn:<{Txn(txn)}>";
        }

        return Compact(request);
    }

    /// <summary>etcd's <c>NewLoggableTxnRequest(txn).String()</c>.</summary>
    public static string Txn(TxnRequest txn)
    {
        ArgumentNullException.ThrowIfNull(txn);
        var compare = txn.Compare.Select(c => c.TargetUnionCase == Compare.TargetUnionOneofCase.Value ? ValueCompare(c) : Compact(c));
        return $"compare:<{string.Join(' ', compare)}> success:<{string.Join(' ', txn.Success.Select(Op))}> failure:<{string.Join(' ', txn.Failure.Select(Op))}>";
    }

    /// <summary>etcd's <c>NewLoggablePutRequest(put).String()</c>: the value replaced by <c>value_size</c>.</summary>
    public static string Put(PutRequest put)
    {
        ArgumentNullException.ThrowIfNull(put);
        var sb = new StringBuilder();
        Bytes(sb, "key", put.Key);
        Number(sb, "value_size", put.Value.Length);
        Number(sb, "lease", put.Lease);
        Bool(sb, "prev_kv", put.PrevKv);
        Bool(sb, "ignore_value", put.IgnoreValue);
        Bool(sb, "ignore_lease", put.IgnoreLease);
        return sb.ToString();
    }

    private static string Op(RequestOp op) => op.RequestCase switch
    {
        RequestOp.RequestOneofCase.RequestPut => $"request_put:<{Put(op.RequestPut)}>",
        RequestOp.RequestOneofCase.RequestTxn => $"request_txn:<{Txn(op.RequestTxn)}>",
        _ => Compact(op),
    };

    private static string ValueCompare(Compare c)
    {
        var sb = new StringBuilder();
        if (c.Result != Compare.Types.CompareResult.Equal)
        {
            sb.Append("result:").Append(EnumName(Compare.Descriptor.FindFieldByNumber(Compare.ResultFieldNumber), c.Result)).Append(' ');
        }

        if (c.Target != Compare.Types.CompareTarget.Version)
        {
            sb.Append("target:").Append(EnumName(Compare.Descriptor.FindFieldByNumber(Compare.TargetFieldNumber), c.Target)).Append(' ');
        }

        Bytes(sb, "key", c.Key);
        Number(sb, "value_size", c.Value.Length);
        Bytes(sb, "range_end", c.RangeEnd);
        return sb.ToString();
    }

    private static void Bytes(StringBuilder sb, string name, ByteString value)
    {
        if (!value.IsEmpty)
        {
            sb.Append(name).Append(':');
            Quote(sb, value.Span);
            sb.Append(' ');
        }
    }

    private static void Number(StringBuilder sb, string name, long value)
    {
        if (value != 0)
        {
            sb.Append(name).Append(':').Append(value.ToString(CultureInfo.InvariantCulture)).Append(' ');
        }
    }

    private static void Bool(StringBuilder sb, string name, bool value)
    {
        if (value)
        {
            sb.Append(name).Append(":true ");
        }
    }

    private static void WriteFields(StringBuilder sb, IMessage message)
    {
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                continue;
            }

            if (field.IsRepeated)
            {
                foreach (var item in (IList)value)
                {
                    WriteField(sb, field, item);
                }

                continue;
            }

            if (field.RealContainingOneof is not null ? !field.Accessor.HasValue(message) : IsDefault(field, value))
            {
                continue;
            }

            WriteField(sb, field, value);
        }
    }

    private static void WriteField(StringBuilder sb, FieldDescriptor field, object? value)
    {
        sb.Append(field.Name);
        if (field.FieldType is FieldType.Message or FieldType.Group)
        {
            sb.Append(":<");
            if (value is IMessage inner)
            {
                WriteFields(sb, inner);
            }

            sb.Append("> ");
            return;
        }

        sb.Append(':');
        switch (value)
        {
            case ByteString bytes:
                Quote(sb, bytes.Span);
                break;
            case string text:
                Quote(sb, Encoding.UTF8.GetBytes(text));
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case Enum e:
                sb.Append(EnumName(field, e));
                break;
            case IFormattable f:
                sb.Append(f.ToString(null, CultureInfo.InvariantCulture));
                break;
            default:
                sb.Append(value);
                break;
        }

        sb.Append(' ');
    }

    private static bool IsDefault(FieldDescriptor field, object? value) => value switch
    {
        null => true,
        ByteString b => b.IsEmpty,
        string s => s.Length == 0,
        bool b => !b,
        Enum e => Convert.ToInt32(e, CultureInfo.InvariantCulture) == 0,
        int i => i == 0,
        uint u => u == 0,
        long l => l == 0,
        ulong ul => ul == 0,
        double d => d == 0,
        float f => f == 0,
        _ => field.FieldType is FieldType.Message or FieldType.Group && value is null,
    };

    private static string EnumName(FieldDescriptor field, object value)
    {
        var number = Convert.ToInt32(value, CultureInfo.InvariantCulture);
        return field.EnumType.FindValueByNumber(number)?.Name ?? number.ToString(CultureInfo.InvariantCulture);
    }

    // Go's text format quoting: \n \r \t \" \\ escaped, printable ASCII as is, every other byte as \ooo.
    private static void Quote(StringBuilder sb, ReadOnlySpan<byte> bytes)
    {
        sb.Append('"');
        foreach (var b in bytes)
        {
            switch (b)
            {
                case (byte)'\n':
                    sb.Append("\\n");
                    break;
                case (byte)'\r':
                    sb.Append("\\r");
                    break;
                case (byte)'\t':
                    sb.Append("\\t");
                    break;
                case (byte)'"':
                    sb.Append("\\\"");
                    break;
                case (byte)'\\':
                    sb.Append("\\\\");
                    break;
                default:
                    if (b >= 0x20 && b < 0x7f)
                    {
                        sb.Append((char)b);
                    }
                    else
                    {
                        sb.Append('\\').Append(Convert.ToString(b, 8).PadLeft(3, '0'));
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
