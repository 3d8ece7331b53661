using System.Text;
using System.Text.Json;
using Etcd.Storage.V2Store;

namespace Etcd.Storage.Tests.V2Store;

/// <summary>Strings escaped as Go's encoding/json escapes them (expected texts are Go's own output).</summary>
public sealed class GoJsonEncoderTests
{
    private static string Write(string value)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, V2Json.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("s", value);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    [Theory]
    [InlineData("a<b>&c'+\u2028\u0001\b\f\"é", "{\"s\":\"a\\u003cb\\u003e\\u0026c'+\\u2028\\u0001\\u0008\\u000c\\\"é\"}")]
    [InlineData("tab\there\nnew\rret\\slash", "{\"s\":\"tab\\there\\nnew\\rret\\\\slash\"}")]
    [InlineData("日本語 /foo/bar 😀", "{\"s\":\"日本語 /foo/bar 😀\"}")]
    [InlineData("", "{\"s\":\"\"}")]
    public void Escapes_AsGo(string value, string expected) => Assert.Equal(expected, Write(value));

    [Fact]
    public void LongStrings_EscapeEveryOccurrence()
    {
        var value = string.Concat(Enumerable.Repeat("x<y&", 500));
        Assert.Equal("{\"s\":\"" + string.Concat(Enumerable.Repeat("x\\u003cy\\u0026", 500)) + "\"}", Write(value));
    }

    [Fact]
    public void Serializer_UsesTheSameEscaping()
        => Assert.Equal("\"\\u003cn\\u003e é\"", JsonSerializer.Serialize("<n> é", V2Json.SerializerOptions));
}
