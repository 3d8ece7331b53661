using System.Globalization;
using Etcd.Storage.V2Store;
using Etcdserverpb;

namespace Etcd.Server.V2;

/// <summary>
/// Turns a <c>/v2/keys</c> HTTP request into etcd's v2 <see cref="Request"/> (etcd's <c>parseKeyRequest</c>): the
/// path under <see cref="EtcdServer.V2KeysPrefix"/>, and the form fields <c>value</c>, <c>dir</c>, <c>prevValue</c>,
/// <c>prevIndex</c>, <c>prevExist</c>, <c>ttl</c> (seconds, turned into an expiry on the given clock),
/// <c>refresh</c>, <c>wait</c>, <c>waitIndex</c>, <c>recursive</c>, <c>sorted</c>, <c>quorum</c>, <c>stream</c>,
/// <c>noValueOnSuccess</c>. Bad fields throw <see cref="V2Error"/> with etcd's code and cause (index 0). Stateless.
/// </summary>
public static class V2KeysRequestParser
{
    /// <summary>The path prefix of the keys API.</summary>
    public const string KeysPrefix = "/v2/keys";

    /// <summary>Parses; <paramref name="form"/> holds every value of each field, body values before query values (Go's <c>r.Form</c>).</summary>
    public static (Request Request, bool NoValueOnSuccess) Parse(string method, string urlPath, IReadOnlyDictionary<string, List<string>> form, TimeProvider clock)
    {
        if (!urlPath.StartsWith(KeysPrefix, StringComparison.Ordinal))
        {
            throw new V2Error(V2Error.InvalidForm, "incorrect key prefix", 0);
        }

        var p = V2Store.Clean(EtcdServer.V2KeysPrefix + "/" + urlPath[KeysPrefix.Length..]);
        var prevIndex = Uint(form, "prevIndex", V2Error.IndexNaN, "invalid value for \"prevIndex\"");
        var waitIndex = Uint(form, "waitIndex", V2Error.IndexNaN, "invalid value for \"waitIndex\"");
        var recursive = Bool(form, "recursive", "invalid value for \"recursive\"");
        var sorted = Bool(form, "sorted", "invalid value for \"sorted\"");
        var wait = Bool(form, "wait", "invalid value for \"wait\"");
        var dir = Bool(form, "dir", "invalid value for \"dir\"");
        var quorum = Bool(form, "quorum", "invalid value for \"quorum\"");
        var stream = Bool(form, "stream", "invalid value for \"stream\"");
        if (wait && method != "GET")
        {
            throw new V2Error(V2Error.InvalidField, "\"wait\" can only be used with GET requests", 0);
        }

        var prevValue = First(form, "prevValue");
        if (form.ContainsKey("prevValue") && prevValue.Length == 0)
        {
            throw new V2Error(V2Error.PrevValueRequired, "\"prevValue\" cannot be empty", 0);
        }

        var noValueOnSuccess = Bool(form, "noValueOnSuccess", "invalid value for \"noValueOnSuccess\"");
        ulong? ttl = null;
        if (First(form, "ttl").Length > 0)
        {
            ttl = Uint(form, "ttl", V2Error.TtlNaN, "invalid value for \"ttl\"");
        }

        var r = new Request
        {
            Method = method,
            Path = p,
            Val = First(form, "value"),
            Dir = dir,
            PrevValue = prevValue,
            PrevIndex = prevIndex,
            Wait = wait,
            Since = waitIndex,
            Recursive = recursive,
            Sorted = sorted,
            Quorum = quorum,
            Stream = stream,
        };

        if (form.ContainsKey("prevExist"))
        {
            r.PrevExist = Bool(form, "prevExist", "invalid value for prevExist");
        }

        if (form.ContainsKey("refresh"))
        {
            var refresh = Bool(form, "refresh", "invalid value for refresh");
            r.Refresh = refresh;
            if (refresh)
            {
                if (form.ContainsKey("value") && r.Val.Length > 0)
                {
                    throw new V2Error(V2Error.RefreshValue, "A value was provided on a refresh", 0);
                }

                if (ttl is null)
                {
                    throw new V2Error(V2Error.RefreshTtlRequired, "No TTL value set", 0);
                }
            }
        }

        if (ttl is { } seconds)
        {
            // Go's time.Duration(ttl) * time.Second wraps on overflow; saturate instead (an expiry far away).
            var nanos = seconds > (ulong)(long.MaxValue / 1_000_000_000L) ? long.MaxValue / 2 : (long)seconds * 1_000_000_000L;
            r.Expiration = V2Json.Now(clock) + nanos;
        }

        return (r, noValueOnSuccess);
    }

    private static string First(IReadOnlyDictionary<string, List<string>> form, string key)
        => form.TryGetValue(key, out var v) && v.Count > 0 ? v[0] : "";

    private static ulong Uint(IReadOnlyDictionary<string, List<string>> form, string key, int code, string cause)
    {
        if (!form.TryGetValue(key, out var v) || v.Count == 0)
        {
            return 0;
        }

        // Go's strconv.ParseUint(s, 10, 64): digits only, no sign or spaces.
        if (v[0].Length == 0 || !v[0].All(char.IsAsciiDigit) || !ulong.TryParse(v[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            throw new V2Error(code, cause, 0);
        }

        return n;
    }

    private static bool Bool(IReadOnlyDictionary<string, List<string>> form, string key, string cause)
    {
        if (!form.TryGetValue(key, out var v) || v.Count == 0)
        {
            return false;
        }

        // Go's strconv.ParseBool.
        return v[0] switch
        {
            "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
            "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
            _ => throw new V2Error(V2Error.InvalidField, cause, 0),
        };
    }
}
