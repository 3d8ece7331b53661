using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Etcd.Ctl.Output;

/// <summary>
/// Go's <c>encoding/json</c> of etcd's gogoproto message structs, as etcdctl's json output prints them: fields in
/// declaration order named by their proto names with <c>omitempty</c> (zero numbers, false, empty strings, bytes and
/// lists, absent messages left out), bytes as base64, enums as numbers, 64-bit integers as plain numbers, and a oneof
/// as its Go interface field (<c>"Response":{"ResponsePut":{...}}</c>, <c>null</c> when unset).
/// </summary>
public static class GoJson
{
    /// <summary>The JSON of <paramref name="message"/>.</summary>
    public static string Marshal(IMessage message)
    {
        var sb = new StringBuilder();
        Write(sb, message);
        return sb.ToString();
    }

    /// <summary>Appends the JSON object of <paramref name="message"/>.</summary>
    public static void Write(StringBuilder sb, IMessage message)
    {
        sb.Append('{');
        WriteFields(sb, message, first: true);
        sb.Append('}');
    }

    /// <summary>Appends the fields of <paramref name="message"/> without braces (Go's embedded struct fields); returns whether none was written.</summary>
    public static bool WriteFields(StringBuilder sb, IMessage? message, bool first)
    {
        if (message is null)
        {
            return first;
        }

        var seenOneofs = new HashSet<OneofDescriptor>();
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            var oneof = field.RealContainingOneof;
            if (oneof is not null)
            {
                if (!seenOneofs.Add(oneof))
                {
                    continue;
                }

                Comma(sb, ref first);
                sb.Append('"').Append(GoName(oneof.Name)).Append("\":");
                var set = oneof.Accessor.GetCaseFieldDescriptor(message);
                if (set is null)
                {
                    sb.Append("null");
                }
                else
                {
                    sb.Append("{\"").Append(GoName(set.Name)).Append("\":");
                    WriteValue(sb, set, set.Accessor.GetValue(message));
                    sb.Append('}');
                }

                continue;
            }

            var value = field.Accessor.GetValue(message);
            if (IsEmpty(field, value))
            {
                continue;
            }

            Comma(sb, ref first);
            sb.Append('"').Append(field.Name).Append("\":");
            if (field.IsRepeated)
            {
                sb.Append('[');
                var firstItem = true;
                foreach (var item in (System.Collections.IEnumerable)value)
                {
                    Comma(sb, ref firstItem);
                    WriteValue(sb, field, item);
                }

                sb.Append(']');
            }
            else
            {
                WriteValue(sb, field, value);
            }
        }

        return first;
    }

    /// <summary>Appends a comma unless this is the first member.</summary>
    public static void Comma(StringBuilder sb, ref bool first)
    {
        if (!first)
        {
            sb.Append(',');
        }

        first = false;
    }

    /// <summary>Go's exported field name of a proto name: <c>response_delete_range</c> → <c>ResponseDeleteRange</c>.</summary>
    public static string GoName(string protoName) =>
        string.Concat(protoName.Split('_').Select(p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p[1..]));

    /// <summary>Appends bytes as Go does: a base64 string (null for nil is the caller's choice).</summary>
    public static void Bytes(StringBuilder sb, ByteString b) => sb.Append('"').Append(b.ToBase64()).Append('"');

    private static bool IsEmpty(FieldDescriptor field, object? value)
    {
        if (value is null)
        {
            return true;
        }

        if (field.IsRepeated)
        {
            return ((System.Collections.ICollection)value).Count == 0;
        }

        return value switch
        {
            ByteString b => b.IsEmpty,
            string s => s.Length == 0,
            bool b => !b,
            int i => i == 0,
            long l => l == 0,
            uint u => u == 0,
            ulong ul => ul == 0,
            float f => f == 0,
            double d => d == 0,
            Enum e => Convert.ToInt64(e, CultureInfo.InvariantCulture) == 0,
            _ => false,
        };
    }

    private static void WriteValue(StringBuilder sb, FieldDescriptor field, object? value)
    {
        switch (value)
        {
            case null:
                sb.Append("null");
                break;
            case IMessage m:
                Write(sb, m);
                break;
            case ByteString b:
                Bytes(sb, b);
                break;
            case string s:
                Cli.GoFormat.JsonString(sb, s);
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case Enum e:
                sb.Append(Convert.ToInt64(e, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture));
                break;
            case IFormattable f:
                sb.Append(f.ToString(null, CultureInfo.InvariantCulture));
                break;
            default:
                throw new InvalidOperationException("unexpected field type " + field.FieldType);
        }
    }
}
