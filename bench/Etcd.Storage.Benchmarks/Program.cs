using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Etcd.Storage.Benchmarks.BoltBenchmarks).Assembly).Run(args);
