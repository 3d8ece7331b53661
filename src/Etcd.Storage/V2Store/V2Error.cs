using System.Text;
using System.Text.Json;

namespace Etcd.Storage.V2Store;

/// <summary>
/// An error of etcd's v2 API (<c>etcdserver/api/v2error</c>): a numeric code, etcd's message for it, a cause
/// (usually the key) and the store index when it happened. <see cref="StatusCode"/> is the HTTP status etcd
/// answers with; <see cref="ToJson"/> the body (<c>{"errorCode":N,"message":"...","cause":"...","index":N}</c>).
/// </summary>
public sealed class V2Error : Exception
{
    /// <summary>100: "Key not found" (404).</summary>
    public const int KeyNotFound = 100;
    /// <summary>101: "Compare failed" (412).</summary>
    public const int TestFailed = 101;
    /// <summary>102: "Not a file" (403).</summary>
    public const int NotFile = 102;
    /// <summary>104: "Not a directory".</summary>
    public const int NotDir = 104;
    /// <summary>105: "Key already exists" (412).</summary>
    public const int NodeExist = 105;
    /// <summary>107: "Root is read only".</summary>
    public const int RootReadOnly = 107;
    /// <summary>108: "Directory not empty" (403).</summary>
    public const int DirNotEmpty = 108;
    /// <summary>110: "The request requires user authentication" (401).</summary>
    public const int Unauthorized = 110;
    /// <summary>201: "PrevValue is Required in POST form".</summary>
    public const int PrevValueRequired = 201;
    /// <summary>202: "The given TTL in POST form is not a number".</summary>
    public const int TtlNaN = 202;
    /// <summary>203: "The given index in POST form is not a number".</summary>
    public const int IndexNaN = 203;
    /// <summary>209: "Invalid field".</summary>
    public const int InvalidField = 209;
    /// <summary>210: "Invalid POST form".</summary>
    public const int InvalidForm = 210;
    /// <summary>211: "Value provided on refresh".</summary>
    public const int RefreshValue = 211;
    /// <summary>212: "A TTL must be provided on refresh".</summary>
    public const int RefreshTtlRequired = 212;
    /// <summary>300: "Raft Internal Error" (500).</summary>
    public const int RaftInternal = 300;
    /// <summary>301: "During Leader Election" (500).</summary>
    public const int LeaderElect = 301;
    /// <summary>401: "The event in requested index is outdated and cleared".</summary>
    public const int EventIndexCleared = 401;

    private static readonly Dictionary<int, string> Messages = new()
    {
        [100] = "Key not found",
        [101] = "Compare failed",
        [102] = "Not a file",
        [103] = "Reached the max number of peers in the cluster",
        [104] = "Not a directory",
        [105] = "Key already exists",
        [106] = "The prefix of given key is a keyword in etcd",
        [107] = "Root is read only",
        [108] = "Directory not empty",
        [109] = "Peer address has existed",
        [110] = "The request requires user authentication",
        [200] = "Value is Required in POST form",
        [201] = "PrevValue is Required in POST form",
        [202] = "The given TTL in POST form is not a number",
        [203] = "The given index in POST form is not a number",
        [204] = "Value or TTL is required in POST form",
        [205] = "The given timeout in POST form is not a number",
        [206] = "Name is required in POST form",
        [207] = "Index or value is required",
        [208] = "Index and value cannot both be specified",
        [209] = "Invalid field",
        [210] = "Invalid POST form",
        [211] = "Value provided on refresh",
        [212] = "A TTL must be provided on refresh",
        [300] = "Raft Internal Error",
        [301] = "During Leader Election",
        [400] = "watcher is cleared due to etcd recovery",
        [401] = "The event in requested index is outdated and cleared",
        [402] = "Standby Internal Error",
        [403] = "Invalid active size",
        [404] = "Standby remove delay",
        [500] = "Client Internal Error",
    };

    /// <summary>Creates error <paramref name="code"/> with etcd's message for it.</summary>
    public V2Error(int code, string cause, ulong index)
        : base(Messages.GetValueOrDefault(code, ""))
    {
        Code = code;
        Cause = cause;
        Index = index;
    }

    /// <summary>etcd's error code (100..500).</summary>
    public int Code { get; }

    /// <summary>The cause (a key, or a description such as <c>[a != b]</c>); empty when none.</summary>
    public string Cause { get; set; }

    /// <summary>The store index the error carries (<c>X-Etcd-Index</c>).</summary>
    public ulong Index { get; set; }

    /// <summary>The HTTP status etcd answers this error with: 404, 403, 401, 412, 500, else 400.</summary>
    public int StatusCode => Code switch
    {
        KeyNotFound => 404,
        NotFile or DirNotEmpty => 403,
        Unauthorized => 401,
        TestFailed or NodeExist => 412,
        RaftInternal or LeaderElect => 500,
        _ => 400,
    };

    /// <summary>The JSON body etcd writes (Go field order, <c>cause</c> omitted when empty), without the newline.</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteNumber("errorCode", Code);
            w.WriteString("message", Message);
            if (Cause.Length > 0)
            {
                w.WriteString("cause", Cause);
            }

            w.WriteNumber("index", Index);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
