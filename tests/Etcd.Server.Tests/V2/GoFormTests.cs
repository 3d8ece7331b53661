using Etcd.Server.V2;

namespace Etcd.Server.Tests.V2;

/// <summary>Go's form parsing (net/url.ParseQuery, Go 1.19) as the v2 handlers use it; expected texts from etcd 3.4.23.</summary>
public sealed class GoFormTests
{
    [Theory]
    [InlineData("value=a+b%20c", "value", "a b c")]
    [InlineData("value=%E2%82%AC", "value", "\u20ac")]
    [InlineData("value", "value", "")]
    [InlineData("value=x=y", "value", "x=y")]
    [InlineData("&&value=1&", "value", "1")]
    public void ParsesLikeGo(string query, string key, string expected)
    {
        var form = new Dictionary<string, List<string>>();
        Assert.Null(GoForm.ParseQuery(query, form));
        Assert.Equal([expected], form[key]);
    }

    [Theory]
    [InlineData("value=%zz", "invalid URL escape \"%zz\"")]
    [InlineData("value=1&ttl=%", "invalid URL escape \"%\"")]
    [InlineData("value=a+b%20c&x=%z", "invalid URL escape \"%z\"")]
    [InlineData("a=1;b=2", "invalid semicolon separator in query")]
    [InlineData("a=%zz&b=1;c", "invalid semicolon separator in query")]
    [InlineData("a=%zz&b=%qq", "invalid URL escape \"%zz\"")]
    public void RefusesLikeGo(string query, string error)
    {
        var form = new Dictionary<string, List<string>>();
        Assert.Equal(error, GoForm.ParseQuery(query, form));
    }

    [Fact]
    public void KeepsGoodPairsAroundABadOne()
    {
        var form = new Dictionary<string, List<string>>();
        Assert.NotNull(GoForm.ParseQuery("a=1&b=%zz&a=2&c=3", form));
        Assert.Equal(["1", "2"], form["a"]);
        Assert.Equal(["3"], form["c"]);
        Assert.False(form.ContainsKey("b"));
    }
}
