// Package telemetry configures OpenTelemetry for Sluice processes from the
// standard OTEL_* environment variables.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols understood in OTEL_EXPORTER_OTLP_PROTOCOL and its per-signal
// variants.
const (
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
)

// Setup installs the W3C TraceContext and Baggage propagators and, unless
// OTEL_SDK_DISABLED=true, a tracer provider and a meter provider exporting
// over OTLP for each signal whose endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT)
// and whose exporter (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER) is not
// "none". The protocol comes from OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL:
// "grpc" or the default "http/protobuf"; the exporters read the remaining
// OTEL_EXPORTER_OTLP_* variables themselves. Signals left unconfigured keep
// the global no-op providers.
//
// The resource is the SDK default merged with service.name and
// service.version, which OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// override. shutdown flushes and stops whatever Setup started, bounded by the
// context it is given; it is never nil.
func Setup(ctx context.Context, service, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	noop := func(context.Context) error { return nil }
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return noop, nil
	}

	tracesOn := signalEnabled("TRACES")
	metricsOn := signalEnabled("METRICS")
	if !tracesOn && !metricsOn {
		return noop, nil
	}

	res, err := newResource(ctx, service, version)
	if err != nil {
		return noop, err
	}

	var shutdowns []func(context.Context) error
	shutdownAll := func(ctx context.Context) error {
		var errs []error
		for _, fn := range shutdowns {
			errs = append(errs, fn(ctx))
		}
		return errors.Join(errs...)
	}

	if tracesOn {
		exp, err := newTraceExporter(ctx)
		if err != nil {
			return noop, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		shutdowns = append(shutdowns, func(ctx context.Context) error {
			if err := tp.Shutdown(ctx); err != nil {
				return fmt.Errorf("shutting down tracer provider: %w", err)
			}
			return nil
		})
		otel.SetTracerProvider(tp)
	}

	if metricsOn {
		exp, err := newMetricExporter(ctx)
		if err != nil {
			_ = shutdownAll(ctx)
			return noop, err
		}
		mp := sdkmetric.NewMeterProvider(
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)),
			sdkmetric.WithResource(res),
		)
		shutdowns = append(shutdowns, func(ctx context.Context) error {
			if err := mp.Shutdown(ctx); err != nil {
				return fmt.Errorf("shutting down meter provider: %w", err)
			}
			return nil
		})
		otel.SetMeterProvider(mp)
	}

	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		slog.Warn("opentelemetry error", "err", err)
	}))
	return shutdownAll, nil
}

// signalEnabled reports whether an OTLP endpoint is configured for signal
// ("TRACES" or "METRICS") and its exporter is not switched off.
func signalEnabled(signal string) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_"+signal+"_EXPORTER")), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// protocol returns the OTLP protocol configured for signal.
func protocol(signal string) (string, error) {
	p := os.Getenv("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p = strings.TrimSpace(p); p {
	case "", protocolHTTPProtobuf:
		return protocolHTTPProtobuf, nil
	case protocolGRPC:
		return protocolGRPC, nil
	}
	return "", fmt.Errorf("unsupported OTLP protocol %q for %s: use %q or %q",
		p, strings.ToLower(signal), protocolGRPC, protocolHTTPProtobuf)
}

func newTraceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	p, err := protocol("TRACES")
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if p == protocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("creating OTLP %s trace exporter: %w", p, err)
	}
	return exp, nil
}

func newMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	p, err := protocol("METRICS")
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if p == protocolGRPC {
		exp, err = otlpmetricgrpc.New(ctx)
	} else {
		exp, err = otlpmetrichttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("creating OTLP %s metric exporter: %w", p, err)
	}
	return exp, nil
}

// newResource describes this process: the SDK defaults, then service.name
// and service.version, then OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
// each overriding the previous.
func newResource(ctx context.Context, service, version string) (*resource.Resource, error) {
	var attrs []attribute.KeyValue
	if service != "" {
		attrs = append(attrs, attribute.String("service.name", service))
	}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	own, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithFromEnv())
	switch {
	case errors.Is(err, resource.ErrPartialResource):
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: keep the rest.
		slog.Warn("ignoring part of the telemetry resource", "err", err)
	case err != nil:
		return nil, fmt.Errorf("detecting resource: %w", err)
	}
	res, err := resource.Merge(resource.Default(), own)
	if err != nil {
		return nil, fmt.Errorf("merging resource: %w", err)
	}
	return res, nil
}
